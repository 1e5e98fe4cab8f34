package trackingplan

// What filter conditions see of one event: the variables, resolved on
// first use, and which of them a condition refers to.

import (
	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/interpreter"
)

// uses is a set of the variables of the filter environment.
type uses uint8

const (
	usesEvent uses = 1 << iota
	usesCategory
	usesActor
	usesResource
	usesContext
	usesProperties
)

var varUses = map[string]uses{
	"event": usesEvent, "category": usesCategory, "actor": usesActor,
	"resource": usesResource, "context": usesContext, "properties": usesProperties,
}

// usesOf returns the variables a checked condition refers to: the checker
// resolves every identifier, so one it did not record is never read.
func usesOf(ast *cel.Ast) uses {
	var u uses
	for _, r := range ast.NativeRep().ReferenceMap() {
		u |= varUses[r.Name]
	}
	return u
}

// Uses reports which of actor, resource and context (the variables built
// from the event's fields for the filters) any enabled condition refers
// to. A variable no condition refers to may be left nil in Input. Nil
// filters refer to nothing.
func (cf *CompiledFilters) Uses() (actor, resource, context bool) {
	if cf == nil {
		return false, false, false
	}
	return cf.uses&usesActor != 0, cf.uses&usesResource != 0, cf.uses&usesContext != 0
}

// activation is the variables of one event's conditions
// (interpreter.Activation). props is the conditions' view of
// in.Properties (numbers converted by celValue), made on first use and
// kept in step with the property actions.
type activation struct {
	in    *Input
	props map[string]any
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "event":
		return a.in.Event, true
	case "category":
		return a.in.Category, true
	case "actor":
		return nonNil(a.in.Actor), true
	case "resource":
		return nonNil(a.in.Resource), true
	case "context":
		return nonNil(a.in.Context), true
	case "properties":
		if a.props == nil {
			a.props = celValue(a.in.Properties).(map[string]any)
		}
		return a.props, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }
