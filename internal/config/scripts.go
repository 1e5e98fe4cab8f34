package config

// Variables of the scripts, the load generator and the tests: declared so
// that setting them is not refused as a typo and docs/configuration.md
// lists them.

var (
	Integration = declare(Bool{Var: Var{Name: "AUDITTRAIL_INTEGRATION", Readers: "tests",
		Doc: "set to 1 (scripts/test does) to run the integration tests against real servers"}})
	TestLog = declare(Bool{Var: Var{Name: "AUDITTRAIL_TEST_LOG", Readers: "tests",
		Doc: "set to 1 to print component logs from integration tests"}})
	CHDBPython = declare(String{Var: Var{Name: "AUDITTRAIL_CHDB_PYTHON", Readers: "tests",
		Doc: "the Python with chdb-core that the current-ClickHouse tests run (scripts/test sets it; default: $AUDITTRAIL_HOME/chdb/bin/python)", Accepts: "a path"}})
	Schemathesis = declare(String{Var: Var{Name: "AUDITTRAIL_SCHEMATHESIS", Readers: "tests",
		Doc: "the schemathesis command the API contract test runs (scripts/test sets it; default: $AUDITTRAIL_HOME/schemathesis/bin/schemathesis)", Accepts: "a path"}})
	ContractSeed = declare(Int{Var: Var{Name: "AUDITTRAIL_CONTRACT_SEED", Readers: "tests",
		Doc: "the seed of the API contract test's generated requests (Schemathesis); set another to explore"},
		Default: 20261207, Min: 0, NoMax: true})
	ContractExamples = declare(Int{Var: Var{Name: "AUDITTRAIL_CONTRACT_EXAMPLES", Readers: "tests",
		Doc: "how many requests the API contract test generates per operation and phase (Schemathesis --max-examples)"},
		Default: 40, Min: 1, Max: 10000})
	ContractCatalogue = declare(String{Var: Var{Name: "AUDITTRAIL_CONTRACT_CATALOGUE", Readers: "tests",
		Doc: "the event catalogue (GET /v1/catalogue) from which the API contract test's Schemathesis hooks draw event names (the test sets it)", Accepts: "a path"}})
	ContractSink = declare(String{Var: Var{Name: "AUDITTRAIL_CONTRACT_SINK", Readers: "tests",
		Doc: "the loopback URL at which the API contract test's Schemathesis hooks aim every forwarding and alert URL (the test sets it)", Accepts: "an http URL"}})
	Axe = declare(String{Var: Var{Name: "AUDITTRAIL_AXE", Readers: "tests",
		Doc: "axe-core's axe.min.js, which the page's browser tests inject for their accessibility checks (scripts/test sets it; default: $AUDITTRAIL_HOME/axe/node_modules/axe-core/axe.min.js)", Accepts: "a path"}})
	Home = declare(String{Var: Var{Name: "AUDITTRAIL_HOME", Readers: "scripts, tests",
		Doc: "where scripts keep server binaries, data, logs and pid files (relative to the repository)", Accepts: "a path"},
		Default: ".local"})
	KafkaHeap = declare(String{Var: Var{Name: "AUDITTRAIL_KAFKA_HEAP", Readers: "scripts",
		Doc: "JVM heap flags of the local Kafka broker", Accepts: "JVM flags"},
		Default: "-Xms256m -Xmx1g"})
	KafkaTimeout = declare(Int{Var: Var{Name: "AUDITTRAIL_KAFKA_TIMEOUT", Readers: "scripts",
		Doc: "seconds scripts wait for the local broker"},
		Default: 90, Min: 1, NoMax: true})
	CHTimeout = declare(Int{Var: Var{Name: "AUDITTRAIL_CH_TIMEOUT", Readers: "scripts",
		Doc: "seconds scripts wait for the local ClickHouse"},
		Default: 60, Min: 1, NoMax: true})
	FuzzTime = declare(String{Var: Var{Name: "AUDITTRAIL_FUZZTIME", Readers: "scripts",
		Doc: "how long scripts/test runs each fuzz target", Accepts: "a Go duration such as 10s or 1m"},
		Default: "10s"})
	LoadgenToken = declare(String{Var: Var{Name: "AUDITTRAIL_LOADGEN_TOKEN", Readers: "loadgen",
		Doc: "ingest token the load generator sends (default of its -token flag)", Accepts: "an ingest token"}})
)
