package trackingplan

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/checker"

	"github.com/audittrail/audittrail/schemas/jsonlimit"
)

// Filter actions.
const (
	ActionDrop            = "drop"
	ActionSample          = "sample"
	ActionDropProperties  = "drop_properties"
	ActionAllowProperties = "allow_properties"
)

// Limits of a filter list.
const (
	MaxFilters       = 50
	MaxFilterNameLen = 200  // characters
	MaxExprLen       = 4096 // characters
	MaxFilterProps   = 200
	filterCostBudget = 100_000
	// MaxFilterSetCost bounds the cost of one event's pass through a
	// workspace's filters: at save time the sum of the enabled conditions'
	// estimated costs (each counted at most filterCostBudget), and at run
	// time the actual cost of all conditions evaluated for one event.
	// 100,000 units take 10-20 ms, so an event spends at most about 60 ms
	// in conditions (50 conditions at their own limit took 0.5-1 s).
	MaxFilterSetCost = 300_000
	// maxValueSize bounds the size of any list, map or string a condition
	// sees: an event is at most 32 KiB.
	maxValueSize = 32 << 10
)

// Filters are a workspace's destination filters, applied in order.
type Filters struct {
	Filters []Filter `json:"filters"`
}

// Filter applies Action to events for which the CEL condition If is true.
// The condition sees the variables event (string), category (string),
// actor, resource, context (maps of strings) and properties (the event's
// properties, a map). An empty condition matches every event.
type Filter struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	If      string `json:"if"`
	// Action is one of drop, sample (keep Percent % of matching events,
	// chosen deterministically by event id), drop_properties (remove
	// Properties) and allow_properties (keep only Properties).
	Action  string      `json:"action"`
	Percent json.Number `json:"percent,omitempty"`
	// Properties are top-level property names, or dotted paths into
	// nested objects ("address.city").
	Properties []string `json:"properties,omitempty"`
}

// CompiledFilters apply a filter list. Nil applies nothing. Safe for
// concurrent use.
type CompiledFilters struct {
	filters []compiledFilter
	uses    uses // the variables any enabled condition refers to
	// native: the conditions in native form run natively (nativeFits).
	native bool
}

type compiledFilter struct {
	name      string
	action    string
	perMyriad uint64 // sample: kept per 10,000
	props     [][]string
	prg       cel.Program // nil: always true
	uses      uses        // the variables the condition refers to
	est       uint64      // the condition's estimated worst-case cost
	native    nativeCond  // nil: the condition runs in CEL only
}

var celEnv = func() *cel.Env {
	env, err := cel.NewEnv(
		cel.Variable("event", cel.StringType),
		cel.Variable("category", cel.StringType),
		cel.Variable("actor", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("resource", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("context", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("properties", cel.MapType(cel.StringType, cel.DynType)),
	)
	if err != nil {
		panic(fmt.Sprintf("cel environment: %v", err))
	}
	return env
}()

// CompileExpr compiles one filter condition; the error is the compiler's
// message. The condition must evaluate to a bool.
func CompileExpr(expr string) (cel.Program, error) {
	prg, _, err := compileExpr(expr)
	return prg, err
}

// compileExpr compiles a condition and says which variables it refers to.
func compileExpr(expr string) (cel.Program, uses, error) {
	c, err := compileCondition(expr)
	return c.prg, c.uses, err
}

// condition is a compiled condition: its CEL program, the variables it
// refers to, its estimated worst-case cost over an event of at most 32 KiB
// (uncapped) and, when its shape allows, its native form (nativecond.go).
type condition struct {
	prg    cel.Program
	uses   uses
	est    uint64
	native nativeCond
}

func compileCondition(expr string) (condition, error) {
	if utf8.RuneCountInString(expr) > MaxExprLen {
		return condition{}, fmt.Errorf("longer than %d characters", MaxExprLen)
	}
	ast, iss := celEnv.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return condition{}, fmt.Errorf("%s", strings.TrimSpace(iss.Err().Error()))
	}
	if ast.OutputType() != cel.BoolType {
		return condition{}, fmt.Errorf("must evaluate to a bool, not %s", ast.OutputType())
	}
	if err := checkMatches(ast); err != nil {
		return condition{}, err
	}
	// The per-event tracker set by Apply replaces the tracker this limit
	// configures; the option keeps cost tracking on for every program.
	prg, err := celEnv.Program(ast, cel.CostLimit(filterCostBudget), cel.InterruptCheckFrequency(100))
	if err != nil {
		return condition{}, fmt.Errorf("%v", err)
	}
	c := condition{prg: prg, uses: usesOf(ast), est: math.MaxUint64}
	if est, err := celEnv.EstimateCost(ast, eventSizes{}); err == nil {
		c.est = est.Max
	}
	c.native, _ = compileNative(ast)
	return c, nil
}

// estimatedCost is the worst-case cost of one condition over an event of
// at most 32 KiB, counted at most filterCostBudget (the runtime limit of one
// condition).
func estimatedCost(expr string) (uint64, error) {
	a, iss := celEnv.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return 0, fmt.Errorf("%s", strings.TrimSpace(iss.Err().Error()))
	}
	est, err := celEnv.EstimateCost(a, eventSizes{})
	if err != nil {
		return 0, fmt.Errorf("%v", err)
	}
	return min(est.Max, filterCostBudget), nil
}

// eventSizes tells the cost estimator that no value of an event is larger
// than the event.
type eventSizes struct{}

func (eventSizes) EstimateSize(checker.AstNode) *checker.SizeEstimate {
	return &checker.SizeEstimate{Min: 0, Max: maxValueSize}
}

func (eventSizes) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// Compile validates f and compiles every condition. Errors are *FieldError
// naming the field (e.g. "filters[1].if"); for conditions the message is the
// CEL compiler's.
func (f Filters) Compile() (*CompiledFilters, error) {
	if len(f.Filters) > MaxFilters {
		return nil, fieldErr("filters", "at most %d filters", MaxFilters)
	}
	cf := &CompiledFilters{}
	names := map[string]bool{}
	for i, fl := range f.Filters {
		at := func(s string) string { return fmt.Sprintf("filters[%d].%s", i, s) }
		if strings.TrimSpace(fl.Name) == "" || utf8.RuneCountInString(fl.Name) > MaxFilterNameLen {
			return nil, fieldErr(at("name"), "a name of 1-%d characters, not only spaces", MaxFilterNameLen)
		}
		if names[fl.Name] {
			return nil, fieldErr(at("name"), "%q used twice", fl.Name)
		}
		names[fl.Name] = true
		c := compiledFilter{name: fl.Name, action: fl.Action}
		switch fl.Action {
		case ActionDrop:
		case ActionSample:
			if fl.Percent == "" {
				return nil, fieldErr(at("percent"), "required for sample: 0-100")
			}
			p, err := fl.Percent.Float64()
			if err != nil || p < 0 || p > 100 {
				return nil, fieldErr(at("percent"), "%s: want a number from 0 to 100", fl.Percent)
			}
			c.perMyriad = uint64(p*100 + 0.5)
		case ActionDropProperties, ActionAllowProperties:
			if len(fl.Properties) == 0 {
				return nil, fieldErr(at("properties"), "list at least one property for %s", fl.Action)
			}
			if len(fl.Properties) > MaxFilterProps {
				return nil, fieldErr(at("properties"), "at most %d properties", MaxFilterProps)
			}
			for j, p := range fl.Properties {
				parts := strings.Split(p, ".")
				if len(parts) > jsonlimit.MaxDepth {
					return nil, fieldErr(fmt.Sprintf("filters[%d].properties[%d]", i, j), "a path of at most %d segments", jsonlimit.MaxDepth)
				}
				for _, part := range parts {
					if part == "" {
						return nil, fieldErr(fmt.Sprintf("filters[%d].properties[%d]", i, j), "%q: empty path segment", p)
					}
				}
				c.props = append(c.props, parts)
			}
		default:
			return nil, fieldErr(at("action"), "%q: want drop, sample, drop_properties or allow_properties", fl.Action)
		}
		if fl.Action != ActionSample && fl.Percent != "" {
			return nil, fieldErr(at("percent"), "only for the sample action")
		}
		if strings.TrimSpace(fl.If) != "" {
			cond, err := compileCondition(fl.If)
			if err != nil {
				return nil, fieldErr(at("if"), "%s", err)
			}
			c.prg, c.uses, c.est, c.native = cond.prg, cond.uses, cond.est, cond.native
		}
		if fl.Enabled {
			cf.filters = append(cf.filters, c)
			cf.uses |= c.uses
		}
	}
	cf.native = nativeFits(cf.filters)
	return cf, nil
}

// Input is what filter conditions see of one event.
type Input struct {
	ID       string
	Event    string
	Category string
	Actor    map[string]string
	Resource map[string]string
	Context  map[string]string
	// Properties is modified in place by property actions.
	Properties map[string]any
	// Bounded says that no string, list or map the conditions may see is
	// larger than an event of 32 KiB (Pipeline sets it when the raw
	// properties are at most that long): only then are conditions decided
	// natively, whose costs are counted as estimated for such values.
	Bounded bool
}

// Outcome is the result of applying filters to one event.
type Outcome struct {
	// Drop names the filter that dropped the event ("" when kept).
	Drop string
	// EvalErrors counts conditions that failed to evaluate (treated as
	// not matching), e.g. a missing key without has(), including those that
	// ran out of the event's cost budget and those not evaluated because
	// the budget was spent.
	EvalErrors int
	// OverBudget is set when the event's conditions used up
	// MaxFilterSetCost: the condition that crossed it and every later one
	// were treated as not matching.
	OverBudget bool
}

// Sampled reports whether the event with this id is kept by a sample of
// perMyriad per 10,000: the same id always gives the same answer.
func Sampled(id string, perMyriad uint64) bool {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return h.Sum64()%10000 < perMyriad
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// celValue converts json.Number values (the decoder keeps numbers exact)
// into int64 or float64, which CEL understands. The input is not modified.
func celValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = celValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = celValue(e)
		}
		return out
	case json.Number:
		return celNumber(x)
	case nil:
		if v == nil {
			return map[string]any{}
		}
	}
	return v
}

// celNumber is a JSON number as CEL sees it: an int64 when it is an
// integer that fits, else a float64 (infinite beyond its range).
func celNumber(x json.Number) any {
	if n, err := x.Int64(); err == nil {
		return n
	}
	f, _ := x.Float64()
	return f
}

func deletePath(m map[string]any, path []string) {
	for len(path) > 1 {
		next, ok := m[path[0]].(map[string]any)
		if !ok {
			return
		}
		m, path = next, path[1:]
	}
	delete(m, path[0])
}

func copyPath(dst, src map[string]any, path []string) {
	for len(path) > 1 {
		next, ok := src[path[0]].(map[string]any)
		if !ok {
			return
		}
		d, ok := dst[path[0]].(map[string]any)
		if !ok {
			d = map[string]any{}
			dst[path[0]] = d
		}
		dst, src, path = d, next, path[1:]
	}
	if v, ok := src[path[0]]; ok {
		dst[path[0]] = v
	}
}
