package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// repoRoot is the module's root, seen from this package's folder.
const repoRoot = "../.."

// nameRE matches a variable name in text; a name followed by "_*" stands
// for a family ("AUDITTRAIL_CLICKHOUSE_*").
var nameRE = regexp.MustCompile(`AUDITTRAIL_[A-Z0-9_]*[A-Z0-9](_\*)?`)

// checkNamed fails t for every name in text that is not declared.
func checkNamed(t *testing.T, where, text string) {
	t.Helper()
	for _, m := range nameRE.FindAllString(text, -1) {
		if family, ok := strings.CutSuffix(m, "*"); ok {
			require.Truef(t, declaredFamily(family), "%s names %s, but no declared variable starts with %s", where, m, family)
			continue
		}
		_, ok := Lookup(m)
		require.Truef(t, ok, "%s names %s, which internal/config does not declare (a typo, or a variable to declare)", where, m)
	}
}

func declaredFamily(prefix string) bool {
	for _, v := range Variables {
		if strings.HasPrefix(v.Name, prefix) {
			return true
		}
	}
	return false
}

// pendingLiterals are the name literals left in files that other work
// owns, each to become a use of the declaration (config.X.Name, X.Get,
// chconn.FromEnv). The test fails when one is gone, so the list only
// shrinks.
var pendingLiterals = map[string][]string{}

// TestNoSecondDeclaration: outside internal/config, Go code names a
// variable only through its declaration. The one kind of literal allowed is
// an assignment for a child process's environment ("AUDITTRAIL_X=" + v, as
// the drills and benchmarks start services), and its name must be declared.
func TestNoSecondDeclaration(t *testing.T) {
	found := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "internal/config" || strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			require.NoError(t, err)
			where := fset.Position(lit.Pos()).String()
			if name, value, ok := strings.Cut(s, "="); ok && nameRE.FindString(s) == name && !strings.Contains(value, " ") {
				checkNamed(t, where, name) // a child's environment
				return true
			}
			for _, m := range nameRE.FindAllString(s, -1) {
				found[rel] = append(found[rel], m)
				if !pending(rel, m) {
					t.Errorf("%s: %q names %s: use its declaration in internal/config (config.<Var>.Name, .Get) instead of a second one", where, s, m)
				}
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	for file, names := range pendingLiterals {
		for _, n := range names {
			require.Containsf(t, found[file], n, "%s no longer names %s: remove it from pendingLiterals", file, n)
		}
	}
}

func pending(file, name string) bool {
	for _, n := range pendingLiterals[file] {
		if n == name {
			return true
		}
	}
	return false
}

// TestScriptsAndDeployNameDeclaredVariables catches a misspelt variable in
// the manifests, configuration samples, documentation and shell scripts of
// deploy/ and scripts/ (which set and read the variables by name).
func TestScriptsAndDeployNameDeclaredVariables(t *testing.T) {
	var files []string
	for _, dir := range []string{"deploy", "scripts"} {
		require.NoError(t, filepath.WalkDir(filepath.Join(repoRoot, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(path, ".go") {
				return err
			}
			files = append(files, path)
			return nil
		}))
	}
	sort.Strings(files)
	require.NotEmpty(t, files)
	named := 0
	for _, path := range files {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		checkNamed(t, path, string(b))
		named += len(nameRE.FindAll(b, -1))
	}
	require.Greater(t, named, 50, "the manifests and scripts set the variables")
}
