package credential

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/audittrail/audittrail/schemas/catalogue"
)

// ParseList splits a comma-separated scope list ("ws_1,ws_eu_*", "*"),
// trimming spaces and dropping empty items.
func ParseList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Validate reports scopes that are empty or name something that does not
// exist: a category outside the catalogue's (and "Custom"), "*" mixed with
// other entries, or "*" inside an entry other than at its end.
func (s Scopes) Validate() error {
	var errs []error
	if err := checkList("workspaces", s.Workspaces, func(string) error { return nil }); err != nil {
		errs = append(errs, err)
	}
	if err := checkList("categories", s.Categories, func(c string) error {
		if strings.HasSuffix(c, "*") || catalogue.IsCategory(c) || c == catalogue.CustomCategory {
			return nil
		}
		return fmt.Errorf("%q is not a category: one of %s, %s", c, strings.Join(catalogue.Categories(), ", "), catalogue.CustomCategory)
	}); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func checkList(field string, list []string, check func(string) error) error {
	if len(list) == 0 {
		return fmt.Errorf("%s: empty; name at least one, or %q for all", field, All)
	}
	if slices.Contains(list, All) && len(list) > 1 {
		return fmt.Errorf("%s: %q stands alone", field, All)
	}
	for _, v := range list {
		if v == All {
			continue
		}
		if i := strings.IndexByte(v, '*'); (i >= 0 && i != len(v)-1) || strings.ContainsAny(v, ", \t") {
			return fmt.Errorf("%s: %q: an exact value, or a prefix followed by one trailing *", field, v)
		}
		if err := check(v); err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
	}
	return nil
}

// AllowsWorkspace reports whether the scopes cover workspace ws. No scope
// covers PlatformWorkspace.
func (s Scopes) AllowsWorkspace(ws string) bool {
	return ws != PlatformWorkspace && matches(s.Workspaces, ws)
}

// AllowsCategory reports whether the scopes cover category c.
func (s Scopes) AllowsCategory(c string) bool { return matches(s.Categories, c) }

func matches(list []string, v string) bool {
	for _, p := range list {
		if p == All || p == v {
			return true
		}
		if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(v, prefix) {
			return true
		}
	}
	return false
}

// AllScopes covers every workspace (but the platform's) and category: the
// scopes of a legacy ingest token.
func AllScopes() Scopes { return Scopes{Workspaces: []string{All}, Categories: []string{All}} }
