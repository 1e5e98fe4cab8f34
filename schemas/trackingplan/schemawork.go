package trackingplan

import (
	"errors"
	"fmt"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// MaxSchemaWork bounds the work of checking one value against a planned
// event's schema: every subschema applied counts 1, wherever it is reached
// from ($ref included, each time it is referenced), plus the instructions
// of its pattern and patternProperties regexes and the values of its enum.
// An ordinary schema of fifty properties is a few hundred; a schema whose
// definitions apply each other ten times over, six deep, is a million.
const MaxSchemaWork = 5000

var errRecursiveRef = errors.New("a recursive $ref (a schema that reaches itself) is not allowed in a tracking plan: applied more than once per level it makes the work grow with the event's depth")

// schemaWork returns the work of applying s once (see MaxSchemaWork),
// saturating just above the bound, or errRecursiveRef when s reaches itself
// through $ref. Dynamic and recursive references ($dynamicRef,
// $recursiveRef) are refused: their target is not known until checking.
func schemaWork(s *jsonschema.Schema) (int, error) {
	w := workCounter{memo: map[*jsonschema.Schema]int{}, open: map[*jsonschema.Schema]bool{}}
	return w.of(s)
}

type workCounter struct {
	memo map[*jsonschema.Schema]int
	open map[*jsonschema.Schema]bool
}

func (w *workCounter) of(s *jsonschema.Schema) (int, error) {
	if s == nil {
		return 0, nil
	}
	if n, ok := w.memo[s]; ok {
		return n, nil
	}
	if w.open[s] {
		return 0, errRecursiveRef
	}
	if s.DynamicRef != nil || s.RecursiveRef != nil {
		return 0, errors.New("$dynamicRef and $recursiveRef are not allowed in a tracking plan")
	}
	w.open[s] = true
	defer delete(w.open, s)
	subs, own := children(s)
	total := min(1+own, MaxSchemaWork+1)
	for _, c := range subs {
		n, err := w.of(c)
		if err != nil {
			return 0, err
		}
		total = min(total+n, MaxSchemaWork+1)
	}
	w.memo[s] = total
	return total, nil
}

// children returns a schema's subschemas (some may be nil) and the work
// of its own patterns and enum.
func children(s *jsonschema.Schema) (subs []*jsonschema.Schema, own int) {
	subs = append(subs, s.Ref, s.Not, s.If, s.Then, s.Else, s.PropertyNames, s.UnevaluatedProperties,
		s.Contains, s.Items2020, s.UnevaluatedItems, s.ContentSchema)
	for _, l := range [][]*jsonschema.Schema{s.AllOf, s.AnyOf, s.OneOf, s.PrefixItems} {
		subs = append(subs, l...)
	}
	for _, c := range s.Properties {
		subs = append(subs, c)
	}
	for re, c := range s.PatternProperties {
		own += regexWork(re)
		subs = append(subs, c)
	}
	for _, c := range s.DependentSchemas {
		subs = append(subs, c)
	}
	anySub := func(v any) {
		switch x := v.(type) {
		case *jsonschema.Schema:
			subs = append(subs, x)
		case []*jsonschema.Schema:
			subs = append(subs, x...)
		}
	}
	for _, d := range s.Dependencies {
		anySub(d)
	}
	anySub(s.AdditionalProperties)
	anySub(s.Items)
	anySub(s.AdditionalItems)
	if s.Pattern != nil {
		own += regexWork(s.Pattern)
	}
	if s.Enum != nil {
		own += len(s.Enum.Values)
	}
	return subs, own
}

// regexWork is a compiled pattern's instruction count: counted when it was
// compiled for the plan (planRegexp), or counted again.
func regexWork(re jsonschema.Regexp) int {
	if p, ok := re.(*planRegexp); ok {
		return p.insts
	}
	n, err := regexInsts(re.String())
	if err != nil {
		return MaxSchemaWork + 1
	}
	return n
}

// checkSchemaWork refuses a compiled schema that reaches itself or whose
// work exceeds MaxSchemaWork.
func checkSchemaWork(s *jsonschema.Schema) error {
	n, err := schemaWork(s)
	if err != nil {
		return err
	}
	if n > MaxSchemaWork {
		return fmt.Errorf("checking a value applies more than %d subschemas, pattern instructions and enum values (each $ref counts every time it is applied): "+
			"checking every event would take too long; simplify the schema or split it", MaxSchemaWork)
	}
	return nil
}
