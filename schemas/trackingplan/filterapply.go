package trackingplan

// Applying a filter list to one event: the enabled conditions in order,
// each in its native form where it has one and the list allows
// (nativecond.go), else by its CEL program, within the event's cost
// budget; and the actions of the filters that match.

import (
	"fmt"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
)

// Apply runs the enabled filters in order on in. A property action edits
// in.Properties (which must then be non-nil to have effect).
//
// The conditions evaluated for one event share a cost budget of
// MaxFilterSetCost (each condition also stops at filterCostBudget). A
// condition that crosses it fails like any evaluation error: it is counted
// in EvalErrors and does not match; the later conditions are not evaluated
// and count as errors too, and their filters do not apply. A condition
// decided in its native form (only when in.Bounded) counts its estimated
// worst-case cost.
func (cf *CompiledFilters) Apply(in *Input) Outcome {
	return cf.run(in, cf != nil && cf.native && in.Bounded)
}

// applyCEL is Apply with every condition run by its CEL program.
func (cf *CompiledFilters) applyCEL(in *Input) Outcome { return cf.run(in, false) }

// nativeFits reports whether a filter list may decide conditions in their
// native form: each enabled condition's estimated worst-case cost is
// within filterCostBudget and their sum within MaxFilterSetCost (what a
// save of the list requires), so that no budget is reached that the
// CEL programs alone would not reach, however the costs of the natively
// decided conditions are counted.
func nativeFits(fs []compiledFilter) bool {
	var sum uint64
	for _, f := range fs {
		if f.prg == nil {
			continue
		}
		if f.est > filterCostBudget {
			return false
		}
		if sum += f.est; sum > MaxFilterSetCost {
			return false
		}
	}
	return true
}

// eventEval is the state of one event's pass through the conditions.
type eventEval struct {
	in *Input
	// native: conditions in native form are decided natively.
	native bool
	cv     condVars
	// vars are the CEL programs' variables and costs their tracker, made
	// on the first condition run in CEL.
	vars  *activation
	costs *cost.Tracker
	// spent is the estimated cost of the conditions decided natively.
	spent uint64
}

func (cf *CompiledFilters) run(in *Input, native bool) Outcome {
	var out Outcome
	if cf == nil || len(cf.filters) == 0 {
		return out
	}
	e := eventEval{in: in, native: native, cv: condVars{in: in}}
	for i := range cf.filters {
		f := &cf.filters[i]
		if f.prg != nil {
			if out.OverBudget {
				out.EvalErrors++
				continue
			}
			matched, failed := e.eval(f)
			if failed {
				out.EvalErrors++
				if e.costs != nil && e.costs.ActualCost()+e.spent > MaxFilterSetCost {
					out.OverBudget = true
				}
				continue
			}
			if !matched {
				continue
			}
		}
		if e.act(f) {
			out.Drop = f.name
			return out
		}
	}
	return out
}

// eval evaluates f's condition: whether it matched, or failed.
func (e *eventEval) eval(f *compiledFilter) (matched, failed bool) {
	if e.native && f.native != nil {
		if r, ok := f.native(&e.cv); ok {
			e.spent += f.est
			if r.k == kErr {
				return false, true
			}
			return r.k == kBool && r.b, false
		}
	}
	if e.costs == nil {
		e.costs = newCostTracker()
		e.vars = &activation{in: e.in}
	}
	res, err := evalWithin(f.prg, e.vars, e.costs, e.spent)
	if err != nil {
		return false, true
	}
	b, ok := res.Value().(bool)
	return ok && b, false
}

// act runs the action of f, whose condition matched, and reports whether
// it drops the event. The CEL programs' view of the properties, once made,
// follows the property actions; native conditions read in.Properties, which
// is that view but where allow_properties keeps a path through a member
// that is null (the view holds an empty object there). So before such an
// action, if the view exists or would (a native condition resolved the
// properties), it is made, and the event's later conditions run in CEL.
func (e *eventEval) act(f *compiledFilter) bool {
	if e.native && f.action == ActionAllowProperties && hasNestedPath(f.props) &&
		(e.cv.touched || (e.vars != nil && e.vars.props != nil)) {
		if e.vars == nil {
			e.costs = newCostTracker()
			e.vars = &activation{in: e.in}
		}
		if e.vars.props == nil {
			e.vars.props = celValue(e.in.Properties).(map[string]any)
		}
		e.native = false
	}
	return f.apply(e.in, e.vars)
}

func hasNestedPath(paths [][]string) bool {
	for _, p := range paths {
		if len(p) > 1 {
			return true
		}
	}
	return false
}

// apply runs f's action on the event in (whose condition matched) and
// reports whether it drops the event. A property action edits
// in.Properties and, when the conditions have seen it, their view of it.
func (f *compiledFilter) apply(in *Input, vars *activation) (drop bool) {
	switch f.action {
	case ActionDrop:
		return true
	case ActionSample:
		return !Sampled(in.ID, f.perMyriad)
	case ActionDropProperties:
		for _, p := range f.props {
			deletePath(in.Properties, p)
		}
		if vars != nil && vars.props != nil {
			for _, p := range f.props {
				deletePath(vars.props, p)
			}
		}
	case ActionAllowProperties:
		keep := allowed(in.Properties, f.props)
		for k := range in.Properties {
			delete(in.Properties, k)
		}
		for k, v := range keep {
			in.Properties[k] = v
		}
		if vars != nil && vars.props != nil {
			vars.props = allowed(vars.props, f.props)
		}
	}
	return false
}

// allowed returns the members of m at the given paths.
func allowed(m map[string]any, paths [][]string) map[string]any {
	keep := map[string]any{}
	for _, p := range paths {
		copyPath(keep, m, p)
	}
	return keep
}

// newCostTracker returns the cost tracker of one event's conditions. Past
// its limit it panics with cost.LimitExceededError, which Eval returns as
// an evaluation error.
func newCostTracker() *cost.Tracker {
	t, err := cost.NewTracker(nil)
	if err != nil {
		panic(fmt.Sprintf("cel cost tracker: %v", err))
	}
	return t
}

// evalWithin evaluates prg with costs as its cost tracker, limited to the
// smaller of the condition's own limit and what is left of the event's
// budget once spent (the conditions decided natively) is taken off; the
// cost of the evaluation adds to costs.
func evalWithin(prg cel.Program, vars *activation, costs *cost.Tracker, spent uint64) (res ref.Val, err error) {
	limit := min(costs.ActualCost()+filterCostBudget, MaxFilterSetCost-min(spent, MaxFilterSetCost))
	costs.Limit = &limit
	frame, err := interpreter.NewExecutionFrame(vars)
	if err != nil {
		return nil, err
	}
	defer frame.Close()
	frame.SetCostTracker(costs)
	res, _, err = prg.Eval(frame)
	return res, err
}
