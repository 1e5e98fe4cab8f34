package browsertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/audittrail/audittrail/internal/config"
)

// axeScript returns axe-core's script (config.Axe, else the copy axe_install
// of scripts/lib/browser.sh puts under $AUDITTRAIL_HOME/axe).
func axeScript(b *Browser) (string, error) {
	env := config.FromOS()
	path := config.Axe.Get(env)
	if path == "" {
		home := config.Home.GetOr(env, config.Home.Default)
		if !filepath.IsAbs(home) {
			home = filepath.Join(filepath.Dir(ArtifactsDir(b.t)), home)
		}
		path = filepath.Join(home, "axe", "node_modules", "axe-core", "axe.min.js")
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("axe-core (run scripts/test, or axe_install from scripts/lib/browser.sh, or set %s): %w", config.Axe.Name, err)
	}
	return string(src), nil
}

// Violation is one accessibility rule axe-core found broken.
type Violation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"` // CSS selectors of the elements
}

// RequireAccessible runs axe-core (every rule, none disabled) on the page
// as it is now and fails the test on any serious or critical violation;
// what names the view checked (e.g. "the event panel").
func (b *Browser) RequireAccessible(what string) {
	b.t.Helper()
	src, err := axeScript(b)
	if err != nil {
		b.t.Fatalf("accessibility check of %s: %v", what, err)
	}
	if !Eval[bool](b, `typeof axe !== 'undefined'`) {
		Eval[bool](b, src+"\n;true")
	}
	found := Eval[[]Violation](b, `axe.run(document, { resultTypes: ['violations'] }).then(r => r.violations
		.filter(v => v.impact === 'serious' || v.impact === 'critical')
		.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')) })))`)
	if len(found) > 0 {
		var lines []string
		for _, v := range found {
			nodes := v.Nodes
			if len(nodes) > 5 {
				nodes = append(nodes[:5:5], fmt.Sprintf("and %d more", len(v.Nodes)-5))
			}
			lines = append(lines, fmt.Sprintf("%s (%s): %s at %s", v.ID, v.Impact, v.Help, strings.Join(nodes, ", ")))
		}
		b.t.Errorf("accessibility of %s: %d serious or critical violation(s):\n%s", what, len(found), strings.Join(lines, "\n"))
	}
}
