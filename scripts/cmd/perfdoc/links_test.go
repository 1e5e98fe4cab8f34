package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// mdLink matches [text](target) and ![alt](target); the target ends at the
// first space or closing parenthesis.
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)

// TestDocumentLinksResolve checks every relative link in README.md,
// docs/*.md and deploy/*.md: the file exists inside the repository, and an
// #anchor names a heading of the Markdown file it points into.
func TestDocumentLinksResolve(t *testing.T) {
	abs, err := filepath.Abs(root)
	require.NoError(t, err)
	files := []string{filepath.Join(abs, "README.md")}
	for _, pattern := range []string{"docs/*.md", "deploy/*.md"} {
		m, err := filepath.Glob(filepath.Join(abs, pattern))
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.Greater(t, len(files), 5)
	checked := 0
	for _, file := range files {
		for _, l := range links(t, file) {
			checked++
			require.NoError(t, checkLink(abs, file, l), "%s", rel(abs, file))
		}
	}
	require.Greater(t, checked, 20, "links checked")
}

func TestCheckLinkFindsBrokenLinks(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "docs"), 0o755))
	doc := filepath.Join(dir, "docs", "a.md")
	require.NoError(t, os.WriteFile(doc, []byte("# A page\n\n## Fair share: `x` (y)\n\n```\n# not a heading\n```\n"), 0o644))
	require.NoError(t, checkLink(dir, doc, "#fair-share-x-y"))
	require.NoError(t, checkLink(dir, doc, "a.md#a-page"))
	require.NoError(t, checkLink(dir, doc, "https://example.com/x"))
	require.Error(t, checkLink(dir, doc, "#not-a-heading"))
	require.Error(t, checkLink(dir, doc, "b.md"))
	require.Error(t, checkLink(dir, doc, "a.md#nope"))
	require.Error(t, checkLink(dir, doc, "../../outside.md"))
}

// links returns the link targets of a Markdown file, outside fenced code.
func links(t *testing.T, file string) []string {
	text, err := os.ReadFile(file)
	require.NoError(t, err)
	var out []string
	fenced := false
	for _, line := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// checkLink reports whether target, linked from file, resolves inside root.
func checkLink(root, file, target string) error {
	if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
		return nil
	}
	path, anchor, _ := strings.Cut(target, "#")
	dest := file
	if path != "" {
		dest = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
		r, err := filepath.Rel(root, dest)
		if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			return fmt.Errorf("%s points outside the repository", target)
		}
		if _, err := os.Stat(dest); err != nil {
			return fmt.Errorf("%s: %w", target, err)
		}
	}
	if anchor == "" {
		return nil
	}
	if !strings.HasSuffix(dest, ".md") {
		return fmt.Errorf("%s: an anchor into a file that is not Markdown", target)
	}
	text, err := os.ReadFile(dest)
	if err != nil {
		return err
	}
	for _, a := range anchors(string(text)) {
		if a == anchor {
			return nil
		}
	}
	return fmt.Errorf("%s: no heading with the anchor #%s", target, anchor)
}

// anchors returns the anchors GitHub gives a Markdown file's headings.
func anchors(text string) []string {
	var out []string
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		heading := strings.TrimLeft(line, "#")
		if heading == "" || heading[0] != ' ' {
			continue
		}
		slug := slugify(strings.TrimSpace(heading))
		if n := seen[slug]; n > 0 {
			out = append(out, fmt.Sprintf("%s-%d", slug, n))
		} else {
			out = append(out, slug)
		}
		seen[slug]++
	}
	return out
}

func slugify(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func rel(root, file string) string {
	r, err := filepath.Rel(root, file)
	if err != nil {
		return file
	}
	return r
}
