package trackingplan

import (
	"regexp"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// planRegexp is a schema pattern compiled for a plan: Go's regexp and the
// number of instructions it compiles to, the measure of the work bounds
// (MaxSchemaWork, MaxCheckWork), counted once when it is compiled.
// It is safe for concurrent use.
type planRegexp struct {
	*regexp.Regexp
	insts int
}

// maxCachedPatterns bounds the distinct patterns one plan compile keeps:
// beyond it a pattern is compiled each time it is met, as without the
// cache. A 2 MiB plan holds some 100,000 patterns at most; an entry costs
// about 100 bytes besides the compiled pattern, which the compiled plan
// keeps anyway (every pattern the compiler is asked for ends in the plan,
// or the compile fails), so the cache itself costs at most some 6 MiB.
const maxCachedPatterns = 1 << 16

// patternCache compiles each distinct pattern of one plan compile once.
// The JSON-schema compiler asks for a pattern several times (when it
// validates the schema against its meta-schema, which checks that each
// pattern is a regular expression, and when it compiles the schema), and
// a plan repeats patterns across its events; each time costs a parse and
// two compiles (the instruction count and the regexp). A cache belongs to
// one Plan.Compile call, so nothing one plan compiles is seen by another
// (another workspace's, or the same one's next version), and it is closed
// when the compile ends: the validator also calls the engine, on event
// values, to check "format": "regex" (in drafts that assert formats), and
// those values must be neither kept nor shared between the goroutines
// that check events. Until closed it is not safe for concurrent use (the
// plan's compile is sequential); once closed it is, and keeps nothing.
type patternCache struct {
	compiled map[string]patternResult
	limit    int  // most entries kept (maxCachedPatterns)
	misses   int  // patterns compiled while open
	closed   bool // the compile ended: compile keeps and counts nothing
}

type patternResult struct {
	re  *planRegexp
	err error
}

func newPatternCache() *patternCache {
	return &patternCache{compiled: map[string]patternResult{}, limit: maxCachedPatterns}
}

// compile is the plan's regexp engine (jsonschema.Compiler's
// UseRegexpEngine): Go's, behind checkRegex, once per distinct pattern.
// A refused pattern is refused with the same error each time.
func (c *patternCache) compile(pattern string) (jsonschema.Regexp, error) {
	if c.closed {
		// An event's value checked by "format": "regex": compiled as
		// checkRegex allows, kept nowhere.
		re, err := compilePattern(pattern)
		if err != nil {
			return nil, err
		}
		return re, nil
	}
	r, ok := c.compiled[pattern]
	if !ok {
		r.re, r.err = compilePattern(pattern)
		c.misses++
		if len(c.compiled) < c.limit {
			c.compiled[pattern] = r
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return r.re, nil
}

// close ends the plan's compile: the cache drops what it kept, and later
// calls (the validator's, on event values) compile without keeping. It
// must happen before the compiled plan is shared.
func (c *patternCache) close() {
	c.closed = true
	c.compiled = nil
}

// compilePattern refuses pattern as checkRegex does and compiles it.
func compilePattern(pattern string) (*planRegexp, error) {
	n, err := regexInsts(pattern)
	if err != nil {
		return nil, err
	}
	if err := checkInsts(pattern, n); err != nil {
		return nil, err
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	return &planRegexp{Regexp: re, insts: n}, nil
}
