package trackingplan

import (
	"errors"
	"fmt"
	"regexp/syntax"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
)

// RE2 matching takes time proportional to the text times the size of the
// compiled pattern. Counted repetition makes a short pattern large:
// (.*){1000}b is 11 characters and 4,000 instructions, and runs for seconds
// over one 30 KB property, while a condition's cost budget charges a match
// by the pattern's length. A pattern may therefore compile to at most
// regexGrowth instructions per character plus regexSlack, which keeps the
// budget's estimate within a small factor of the real work and accepts
// ordinary patterns (a UUID pattern is 62 characters and 40 instructions).
const (
	regexGrowth = 4
	regexSlack  = 32
)

var errRegexExpands = errors.New("regular expression too large once compiled")

// checkRegex compiles pattern as Go's regexp package does and refuses it
// when it does not compile or when its program outgrows its length.
func checkRegex(pattern string) error {
	n, err := regexInsts(pattern)
	if err != nil {
		return err
	}
	return checkInsts(pattern, n)
}

// checkInsts refuses pattern when its program of n instructions outgrows
// its length.
func checkInsts(pattern string, n int) error {
	if most := regexGrowth*len(pattern) + regexSlack; n > most {
		return fmt.Errorf("%w (%d instructions, at most %d for a pattern of %d characters): "+
			"counted repetition such as {1,255} or (.*){100} multiplies it; bound lengths with size() or maxLength instead",
			errRegexExpands, n, most, len(pattern))
	}
	return nil
}

// regexInsts is the number of instructions pattern compiles to.
func regexInsts(pattern string) (int, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return 0, err
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return 0, err
	}
	return len(prog.Inst), nil
}

// checkMatches refuses a condition whose matches() pattern is not a string
// literal (a pattern taken from the event would be compiled and run
// unchecked) or is refused by checkRegex.
func checkMatches(a *cel.Ast) error {
	var first error
	ast.PreOrderVisit(a.NativeRep().Expr(), ast.NewExprVisitor(func(e ast.Expr) {
		if first != nil || e.Kind() != ast.CallKind || e.AsCall().FunctionName() != "matches" {
			return
		}
		args := e.AsCall().Args()
		if len(args) == 0 {
			return
		}
		pat := args[len(args)-1]
		lit, ok := stringLiteral(pat)
		if !ok {
			first = errors.New("the pattern of matches() must be a string literal")
			return
		}
		if err := checkRegex(lit); err != nil {
			first = fmt.Errorf("matches(%q): %w", lit, err)
		}
	}))
	return first
}

func stringLiteral(e ast.Expr) (string, bool) {
	if e.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}
