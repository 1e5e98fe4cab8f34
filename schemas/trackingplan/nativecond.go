package trackingplan

// Filter conditions compiled to Go. The shapes that filters use most
// (comparisons of fields and properties with literals, has(), startsWith,
// endsWith, contains, in over a list of literals, joined by &&, || and !)
// are compiled from the checked CEL syntax tree to closures that read the
// event directly: no conversion of the properties into CEL's view, no
// activation, frame or cost tracker per condition. A closure decides
// exactly as the CEL program decides (the same value, or an error where
// the program fails, after resolving the same variables in the same
// order: a strict call's later operands are not evaluated once one
// failed, the terms of && and || not after one decided); where it meets
// values outside what it decides (a map or list compared, numbers of two
// kinds ordered, a string longer than an event),
// it says so and the CEL program runs instead. Anything else in a
// condition (other functions, macros over lists, arithmetic) leaves the
// condition to CEL. TestNativeConditionsAgreeWithCEL and
// FuzzNativeConditionsAgreeWithCEL hold the two together.

import (
	"encoding/json"
	"strings"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
)

// valKind is the kind of a value a native condition computed.
type valKind uint8

const (
	kErr    valKind = iota // the program fails here
	kBool                  // b
	kInt                   // i
	kDouble                // f
	kString                // s
	kMap                   // m: the properties or a map within them (nil: empty)
	kStrMap                // sm: actor, resource or context
	kOther                 // a list, or a value of another type
)

// val is one value of a native condition.
type val struct {
	k  valKind
	b  bool
	i  int64
	f  float64
	s  string
	m  map[string]any
	sm map[string]string
}

var errVal = val{k: kErr}

// condVars are the variables a native condition reads: the event's
// Input, and whether it resolved properties (the CEL program then makes
// its view of them).
type condVars struct {
	in      *Input
	touched bool
}

// nativeCond evaluates a condition; ok is false when the values met are
// outside what it decides, and the CEL program must run instead.
type nativeCond func(v *condVars) (r val, ok bool)

// compileNative compiles a checked condition to Go; ok is false when it
// holds anything the native evaluator does not cover.
func compileNative(checked *cel.Ast) (nativeCond, bool) {
	return nativeExpr(checked.NativeRep().Expr())
}

func nativeExpr(e ast.Expr) (nativeCond, bool) {
	switch e.Kind() {
	case ast.LiteralKind:
		return nativeLiteral(e.AsLiteral())
	case ast.IdentKind:
		return nativeIdent(e.AsIdent())
	case ast.SelectKind:
		s := e.AsSelect()
		op, ok := nativeExpr(s.Operand())
		if !ok {
			return nil, false
		}
		return nativeField(op, s.FieldName(), s.IsTestOnly()), true
	case ast.CallKind:
		return nativeCall(e.AsCall())
	}
	return nil, false
}

func nativeLiteral(l any) (nativeCond, bool) {
	var r val
	switch x := l.(type) {
	case types.String:
		r = val{k: kString, s: string(x)}
	case types.Int:
		r = val{k: kInt, i: int64(x)}
	case types.Double:
		if x != x { // NaN is not ordered like other numbers
			return nil, false
		}
		r = val{k: kDouble, f: float64(x)}
	case types.Bool:
		r = val{k: kBool, b: bool(x)}
	default:
		return nil, false
	}
	return func(*condVars) (val, bool) { return r, true }, true
}

func nativeIdent(name string) (nativeCond, bool) {
	switch name {
	case "event":
		return func(v *condVars) (val, bool) { return val{k: kString, s: v.in.Event}, true }, true
	case "category":
		return func(v *condVars) (val, bool) { return val{k: kString, s: v.in.Category}, true }, true
	case "actor":
		return func(v *condVars) (val, bool) { return val{k: kStrMap, sm: v.in.Actor}, true }, true
	case "resource":
		return func(v *condVars) (val, bool) { return val{k: kStrMap, sm: v.in.Resource}, true }, true
	case "context":
		return func(v *condVars) (val, bool) { return val{k: kStrMap, sm: v.in.Context}, true }, true
	case "properties":
		return func(v *condVars) (val, bool) {
			v.touched = true
			return val{k: kMap, m: v.in.Properties}, true
		}, true
	}
	return nil, false
}

// nativeField is op.name, or has(op.name) when test is set.
func nativeField(op nativeCond, name string, test bool) nativeCond {
	return func(v *condVars) (val, bool) {
		o, ok := op(v)
		if !ok || o.k == kErr {
			return o, ok
		}
		return field(o, name, test)
	}
}

// field is o.name, or has(o.name) when test is set: a missing key fails,
// as in CEL; on anything but a map the CEL program decides.
func field(o val, name string, test bool) (val, bool) {
	switch o.k {
	case kStrMap:
		s, present := o.sm[name]
		if test {
			return val{k: kBool, b: present}, true
		}
		if !present {
			return errVal, true
		}
		return val{k: kString, s: s}, true
	case kMap:
		x, present := o.m[name]
		if test {
			return val{k: kBool, b: present}, true
		}
		if !present {
			return errVal, true
		}
		return jsonVal(x), true
	}
	return val{}, false
}

// jsonVal is a decoded JSON value as CEL sees it (celValue): numbers as
// int64 when they are integers that fit, else float64; null as an empty
// map.
func jsonVal(x any) val {
	switch t := x.(type) {
	case string:
		return val{k: kString, s: t}
	case bool:
		return val{k: kBool, b: t}
	case json.Number:
		switch n := celNumber(t).(type) {
		case int64:
			return val{k: kInt, i: n}
		case float64:
			return val{k: kDouble, f: n}
		}
	case float64:
		return val{k: kDouble, f: t}
	case int64:
		return val{k: kInt, i: t}
	case map[string]any:
		return val{k: kMap, m: t}
	case nil:
		return val{k: kMap}
	}
	return val{k: kOther}
}

func nativeCall(c ast.CallExpr) (nativeCond, bool) {
	args := c.Args()
	var target nativeCond
	if c.IsMemberFunction() {
		t, ok := nativeExpr(c.Target())
		if !ok {
			return nil, false
		}
		target = t
	}
	fn := c.FunctionName()
	if fn == "@in" && len(args) == 2 && target == nil {
		return nativeIn(args[0], args[1])
	}
	ops := make([]nativeCond, len(args))
	for i, a := range args {
		op, ok := nativeExpr(a)
		if !ok {
			return nil, false
		}
		ops[i] = op
	}
	switch {
	case target == nil && len(ops) == 2 && (fn == "_&&_" || fn == "_||_"):
		return nativeLogic(ops[0], ops[1], fn == "_||_"), true
	case target == nil && len(ops) == 1 && fn == "!_":
		return nativeNot(ops[0]), true
	case target == nil && len(ops) == 2 && (fn == "_==_" || fn == "_!=_"):
		return nativeEqual(ops[0], ops[1], fn == "_!=_"), true
	case target == nil && len(ops) == 2 && isOrdering(fn):
		return nativeOrder(ops[0], ops[1], fn), true
	case target == nil && len(ops) == 2 && fn == "_[_]":
		return nativeIndex(ops[0], ops[1]), true
	case target != nil && len(ops) == 1 && (fn == "startsWith" || fn == "endsWith" || fn == "contains"):
		return nativeText(target, ops[0], fn), true
	}
	return nil, false
}

// nativeLogic is a && b (or a || b): the terms in order, stopping at the
// first false (true); a term that is not a bool is an error, reported
// only when no term decided.
func nativeLogic(a, b nativeCond, or bool) nativeCond {
	return func(v *condVars) (val, bool) {
		failed := false
		for _, term := range [2]nativeCond{a, b} {
			r, ok := term(v)
			if !ok {
				return val{}, false
			}
			if r.k == kBool && r.b == or {
				return r, true
			}
			if r.k != kBool {
				failed = true
			}
		}
		if failed {
			return errVal, true
		}
		return val{k: kBool, b: !or}, true
	}
}

func nativeNot(a nativeCond) nativeCond {
	return func(v *condVars) (val, bool) {
		r, ok := a(v)
		if !ok || r.k == kErr {
			return r, ok
		}
		if r.k != kBool {
			return errVal, true
		}
		return val{k: kBool, b: !r.b}, true
	}
}

// operands evaluates the operands of a strict call as CEL does: the
// second only when the first did not fail (so that the variables resolved
// are the same); fail reports a failure of either.
func operands(v *condVars, a, b nativeCond) (x, y val, fail bool, ok bool) {
	x, ok = a(v)
	if !ok || x.k == kErr {
		return x, y, ok, ok
	}
	y, ok = b(v)
	return x, y, y.k == kErr, ok
}

// nativeEqual is CEL's heterogeneous equality over scalars: values of
// different kinds are not equal; numbers of two kinds and maps or lists
// are left to CEL.
func nativeEqual(a, b nativeCond, not bool) nativeCond {
	return func(v *condVars) (val, bool) {
		x, y, fail, ok := operands(v, a, b)
		if !ok {
			return val{}, false
		}
		if fail {
			return errVal, true
		}
		eq, ok := scalarEqual(x, y)
		if !ok {
			return val{}, false
		}
		return val{k: kBool, b: eq != not}, true
	}
}

func scalarEqual(x, y val) (eq, ok bool) {
	if !scalar(x.k) || !scalar(y.k) {
		return false, false
	}
	if x.k != y.k {
		if number(x.k) && number(y.k) {
			return false, false
		}
		return false, true
	}
	switch x.k {
	case kBool:
		return x.b == y.b, true
	case kInt:
		return x.i == y.i, true
	case kDouble:
		return x.f == y.f, true
	case kString:
		return x.s == y.s, true
	}
	return false, false
}

func scalar(k valKind) bool { return k == kBool || k == kInt || k == kDouble || k == kString }
func number(k valKind) bool { return k == kInt || k == kDouble }

func isOrdering(fn string) bool { return fn == "_<_" || fn == "_<=_" || fn == "_>_" || fn == "_>=_" }

// nativeOrder is <, <=, > or >= over two values of the same kind (bool,
// int, double, string); other pairs of scalars fail, numbers of two kinds
// are left to CEL.
func nativeOrder(a, b nativeCond, fn string) nativeCond {
	return func(v *condVars) (val, bool) {
		x, y, fail, ok := operands(v, a, b)
		if !ok {
			return val{}, false
		}
		if fail {
			return errVal, true
		}
		if !scalar(x.k) || !scalar(y.k) || (x.k != y.k && number(x.k) && number(y.k)) {
			return val{}, false
		}
		if x.k != y.k {
			return errVal, true
		}
		c := 0
		switch x.k {
		case kBool:
			c = compareBool(x.b, y.b)
		case kInt:
			c = compareOrdered(x.i, y.i)
		case kDouble:
			c = compareOrdered(x.f, y.f)
		case kString:
			c = strings.Compare(x.s, y.s)
		}
		var r bool
		switch fn {
		case "_<_":
			r = c < 0
		case "_<=_":
			r = c <= 0
		case "_>_":
			r = c > 0
		default:
			r = c >= 0
		}
		return val{k: kBool, b: r}, true
	}
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

func compareOrdered[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// nativeIndex is op[key] with a string key on a map: as op.key.
func nativeIndex(op, key nativeCond) nativeCond {
	return func(v *condVars) (val, bool) {
		o, k, fail, ok := operands(v, op, key)
		if !ok {
			return val{}, false
		}
		if fail {
			return errVal, true
		}
		if k.k != kString {
			return val{}, false
		}
		return field(o, k.s, false)
	}
}

// nativeText is target.startsWith(arg), endsWith or contains: both must be
// strings, else the call fails. Strings longer than an event are left to
// CEL, whose cost tracking then counts them.
func nativeText(target, arg nativeCond, fn string) nativeCond {
	return func(v *condVars) (val, bool) {
		x, y, fail, ok := operands(v, target, arg)
		if !ok {
			return val{}, false
		}
		if fail {
			return errVal, true
		}
		if !scalar(x.k) || !scalar(y.k) {
			return val{}, false
		}
		if x.k != kString || y.k != kString {
			return errVal, true
		}
		if len(x.s) > maxValueSize || len(y.s) > maxValueSize {
			return val{}, false
		}
		var r bool
		switch fn {
		case "startsWith":
			r = strings.HasPrefix(x.s, y.s)
		case "endsWith":
			r = strings.HasSuffix(x.s, y.s)
		default:
			r = strings.Contains(x.s, y.s)
		}
		return val{k: kBool, b: r}, true
	}
}

// nativeIn is elem in [literals...]: whether elem equals one of them.
func nativeIn(elem, list ast.Expr) (nativeCond, bool) {
	if list.Kind() != ast.ListKind || len(list.AsList().OptionalIndices()) > 0 {
		return nil, false
	}
	var lits []val
	for _, e := range list.AsList().Elements() {
		if e.Kind() != ast.LiteralKind {
			return nil, false
		}
		lc, ok := nativeLiteral(e.AsLiteral())
		if !ok {
			return nil, false
		}
		l, _ := lc(nil)
		lits = append(lits, l)
	}
	op, ok := nativeExpr(elem)
	if !ok {
		return nil, false
	}
	return func(v *condVars) (val, bool) {
		x, ok := op(v)
		if !ok || x.k == kErr {
			return x, ok
		}
		for _, l := range lits {
			eq, ok := scalarEqual(x, l)
			if !ok {
				return val{}, false
			}
			if eq {
				return val{k: kBool, b: true}, true
			}
		}
		return val{k: kBool, b: false}, true
	}, true
}
