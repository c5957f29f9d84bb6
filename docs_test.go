package events_test

// Docs are code: every Go block of README.md and of the package docs is
// compiled by TestDocs_every_go_block_compiles_and_the_run_ones_run, and the
// blocks marked `run` are run. The convention (README.md "Contributing"
// repeats it):
//
// README.md
//
//   - Every ```go fenced block is Go and must compile. Anything else takes
//     another info string (```bash, ```text, ```json, ```yaml).
//   - A block is a whole file (it starts with `package`), top-level
//     declarations (func, type, var, const), or statements (anything else),
//     which are compiled inside a function. Any block may start with import
//     lines; other imports are added from the package names it uses
//     (docImports: events, router, jetstream, natsjs for nats.go's jetstream,
//     nats, memory, require, time, ...).
//   - Statements may use three names without declaring them: ctx
//     (context.Context), nc (*nats.Conn: a connection to a JetStream server
//     with the AUTH_EVENTS and DLQ streams) and t (*testing.T). Everything
//     else a block uses, it declares, or its marker does. A variable a block
//     declares and does not use is fine (a snippet shows a call's result).
//   - A marker, an HTML comment on the line right above the fence (same
//     indentation), adds hidden package-level declarations (what the block
//     assumes: a type, a helper function) and the option `run`:
//
//     <!-- snippet: run
//     type UserCreated struct{ UserID int `json:"user_id"` }
//     func sendWelcomeMail(ctx context.Context, u UserCreated) error { return nil }
//     -->
//     ```go
//
//     `run` also runs the block (statements that do not use t): against a
//     fresh embedded JetStream server with AUTH_EVENTS and DLQ, with a ctx
//     that ends after a second (so a r.Run(ctx) returns); it must return
//     without panicking.
//
// Package docs (the package doc comment of every package, usually doc.go)
//
//   - Every indented code block is Go, with the same rules (no marker: a doc
//     block declares what it uses but ctx, nc and t), except the blocks
//     listed in notGoDocBlocks (shell commands, JSON, diagrams) by file and
//     first line.
//
// How: each block becomes one package of a generated module whose go.mod
// replaces github.com/jetevents/events with this repository; one `go build`
// of a program importing them all compiles them, and //line directives make every compiler error name
// README.md:LINE or the doc file's line. The run blocks are called, one after
// the other, by one generated program.

import (
	"bytes"
	"context"
	"fmt"
	"go/ast"
	"go/build"
	"go/doc/comment"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// docImports are the package names a block may use without importing them.
var docImports = map[string]string{
	"events":      module,
	"envelope":    module + "/envelope",
	"marshaler":   module + "/marshaler",
	"transport":   module + "/transport",
	"jetstream":   module + "/jetstream",
	"memory":      module + "/memory",
	"middleware":  module + "/middleware",
	"router":      module + "/router",
	"partition":   module + "/partition",
	"metrics":     module + "/metrics",
	"tracing":     module + "/tracing",
	"eventstest":  module + "/eventstest",
	"eventsmock":  module + "/eventsmock",
	"embedded":    module + "/embedded",
	"service":     module + "/examples/service",
	"subscriber":  module + "/subscriber",
	"idempotency": module + "/idempotency",
	"outbox":      module + "/outbox",
	"inbox":       module + "/inbox",
	"dlq":         module + "/dlq",
	"console":     module + "/console",
	"sql":         "database/sql",
	"natsjs":      "github.com/nats-io/nats.go/jetstream",
	"nats":        "github.com/nats-io/nats.go",
	"watermill":   "github.com/ThreeDotsLabs/watermill",
	"message":     "github.com/ThreeDotsLabs/watermill/message",
	"cqrs":        "github.com/ThreeDotsLabs/watermill/components/cqrs",
	"prometheus":  "github.com/prometheus/client_golang/prometheus",
	"promhttp":    "github.com/prometheus/client_golang/prometheus/promhttp",
	"sdktrace":    "go.opentelemetry.io/otel/sdk/trace",
	"otel":        "go.opentelemetry.io/otel",
	"require":     "github.com/stretchr/testify/require",
	"assert":      "github.com/stretchr/testify/assert",
	"context":     "context",
	"errors":      "errors",
	"fmt":         "fmt",
	"io":          "io",
	"json":        "encoding/json",
	"http":        "net/http",
	"os":          "os",
	"signal":      "os/signal",
	"slog":        "log/slog",
	"strings":     "strings",
	"sync":        "sync",
	"syscall":     "syscall",
	"testing":     "testing",
	"time":        "time",
}

// notGoDocBlocks are the code blocks of package docs that are not Go, by
// file and the start of their first line.
var notGoDocBlocks = map[string][]string{
	"cmd/jetevents/main.go":          {"jetevents server "},
	"cmd/jetevents-bench/main.go":    {"go run ./cmd/jetevents-bench"},
	"envelope/doc.go":                {"{"}, // the wire JSON
	"examples/cqrs/main.go":          {"go run ./examples/cqrs"},
	"examples/demo/main.go":          {"make demo"},
	"examples/observability/main.go": {"go run ./examples/observability"},
	"metrics/doc.go":                 {"jetevents_events_published_total"}, // the metric names
	"middleware/doc.go":              {"Correlation -> Logging ->"},        // the stack's order
}

// snippet is one Go block of the docs.
type snippet struct {
	Source    string // README.md, or the doc's file relative to the repository
	Line      int    // line of the block's first line in Source
	Code      string // the block, its indentation removed
	Setup     string // hidden declarations of its marker
	SetupLine int    // line of Setup's first line
	Run       bool   // run it, not only compile it
}

func (s snippet) where() string { return fmt.Sprintf("%s:%d", s.Source, s.Line) }

var markerRE = regexp.MustCompile(`^<!--\s*snippet:(.*)$`)

// readmeSnippets returns the ```go blocks of a Markdown text, with their
// markers. A marker that is not right above a ```go fence is an error.
func readmeSnippets(source, text string) ([]snippet, error) {
	lines := strings.Split(text, "\n")
	var out []snippet
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimLeft(lines[i], " \t")
		indent := len(lines[i]) - len(trimmed)
		var s snippet
		if m := markerRE.FindStringSubmatch(trimmed); m != nil {
			opts := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(m[1]), "-->"))
			for _, o := range strings.Fields(opts) {
				if o != "run" {
					return nil, fmt.Errorf("%s:%d: unknown snippet option %q (the only one is run)", source, i+1, o)
				}
				s.Run = true
			}
			if !strings.HasSuffix(strings.TrimSpace(trimmed), "-->") {
				s.SetupLine = i + 2
				var setup []string
				for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), "-->"); i++ {
					setup = append(setup, dedent(lines[i], indent))
				}
				if i == len(lines) {
					return nil, fmt.Errorf("%s:%d: snippet marker without its closing -->", source, s.SetupLine-1)
				}
				s.Setup = strings.Join(setup, "\n")
			}
			if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != "```go" {
				return nil, fmt.Errorf("%s:%d: a snippet marker must be right above a ```go fence", source, i+1)
			}
			i++
			trimmed = strings.TrimLeft(lines[i], " \t")
			indent = len(lines[i]) - len(trimmed)
		}
		if !strings.HasPrefix(trimmed, "```") {
			continue
		}
		lang := strings.TrimSpace(strings.TrimPrefix(trimmed, "```"))
		start := i + 1 // index of the first code line
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
		}
		if i == len(lines) {
			return nil, fmt.Errorf("%s:%d: unclosed ``` fence", source, start)
		}
		if lang != "go" {
			continue
		}
		var code []string
		for _, l := range lines[start:i] {
			code = append(code, dedent(l, indent))
		}
		s.Source, s.Line, s.Code = source, start+1, strings.Join(code, "\n")
		out = append(out, s)
	}
	return out, nil
}

// dedent removes up to n leading spaces (a fence's indentation inside a list).
func dedent(l string, n int) string {
	for i := 0; i < n && strings.HasPrefix(l, " "); i++ {
		l = l[1:]
	}
	return l
}

// docSnippets returns the code blocks of the package doc comments under
// root (test files, testdata and files excluded by build constraints left
// out), but the ones notGo lists. A code block whose line cannot be found
// is an error.
func docSnippets(root string, notGo map[string][]string) ([]snippet, error) {
	var out []snippet
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if path != root && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) {
			return filepath.SkipDir
		}
		pkg, err := build.Default.ImportDir(path, 0)
		if err != nil {
			return nil // no buildable Go files here
		}
		for _, name := range pkg.GoFiles {
			file := filepath.Join(path, name)
			rel, _ := filepath.Rel(root, file)
			rel = filepath.ToSlash(rel)
			ss, err := fileDocSnippets(file, rel)
			if err != nil {
				return err
			}
			for _, s := range ss {
				first := strings.TrimSpace(strings.SplitN(s.Code, "\n", 2)[0])
				if !slices.ContainsFunc(notGo[rel], func(p string) bool { return strings.HasPrefix(first, p) }) {
					out = append(out, s)
				}
			}
		}
		return nil
	})
	return out, err
}

// fileDocSnippets returns the code blocks of file's package doc comment.
func fileDocSnippets(file, rel string) ([]snippet, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil || f.Doc == nil {
		return nil, err
	}
	var p comment.Parser
	var out []snippet
	next := 0 // the first comment line not matched yet
	for _, b := range p.Parse(f.Doc.Text()).Content {
		code, ok := b.(*comment.Code)
		if !ok {
			continue
		}
		first := strings.TrimSpace(strings.SplitN(code.Text, "\n", 2)[0])
		line := 0
		for ; next < len(f.Doc.List); next++ {
			c := f.Doc.List[next].Text
			if text := strings.TrimPrefix(c, "//"); text != strings.TrimLeft(text, " \t") && strings.TrimSpace(text) == first {
				line = fset.Position(f.Doc.List[next].Slash).Line
				break
			}
		}
		if line == 0 {
			return nil, fmt.Errorf("%s: cannot find the line of the doc code block %q", rel, first)
		}
		out = append(out, snippet{Source: rel, Line: line, Code: strings.TrimRight(code.Text, "\n")})
	}
	return out, nil
}

// freeNames are what statements may use without declaring them.
const freeNames = "ctx context.Context, nc *nats.Conn, t *testing.T"

// render returns the Go file of s as package pkg, and whether s is
// statements (callable as pkg.Snippet(ctx, nc, t)). Syntax errors name s's
// lines.
func render(pkg string, s snippet) (src string, stmts bool, err error) {
	code := s.Code
	if strings.HasPrefix(strings.TrimSpace(stripComments(code)), "package ") {
		if s.Run || s.Setup != "" {
			return "", false, fmt.Errorf("%s: a whole file takes no marker", s.where())
		}
		// Renamed to pkg (a program's package main too: the runner
		// imports every snippet, and func main compiles in any package).
		code = regexp.MustCompile(`(?m)^package \w+`).ReplaceAllString(code, "package "+pkg)
		src = fmt.Sprintf("//line %s:%d\n%s\n", s.Source, s.Line, code)
		if _, err := parser.ParseFile(token.NewFileSet(), "", src, 0); err != nil {
			return "", false, fmt.Errorf("%s: the block is not a Go file: %w", s.where(), err)
		}
		return src, false, nil
	}
	imports, body, bodyLine := splitImports(code, s.Line)
	head := "package " + pkg + "\n\n" + imports + "\n"
	if s.Setup != "" {
		head += fmt.Sprintf("//line %s:%d\n%s\n", s.Source, s.SetupLine, s.Setup)
	}
	decls := head + fmt.Sprintf("//line %s:%d\n%s\n", s.Source, bodyLine, body)
	df, declErr := parser.ParseFile(token.NewFileSet(), "", decls, parser.SkipObjectResolution)
	if declErr == nil && len(df.Decls) > 0 {
		if s.Run {
			return "", false, fmt.Errorf("%s: only statements can run, this block declares", s.where())
		}
		src, err := withImports(decls)
		return src, false, err
	}
	wrapped := head + "func Snippet(" + freeNames + ") {\n\t{\n" +
		fmt.Sprintf("//line %s:%d\n%s\n", s.Source, bodyLine, body) + "//line generated-snippet.go:1\n\t}\n}\n"
	sf, stmtErr := parser.ParseFile(token.NewFileSet(), "", wrapped, parser.SkipObjectResolution)
	if stmtErr != nil {
		err := stmtErr
		if first := strings.Fields(stripComments(body)); len(first) > 0 && slices.Contains([]string{"func", "type", "const"}, first[0]) {
			err = declErr
		}
		return "", false, fmt.Errorf("%s: the block is neither Go declarations nor statements: %w", s.where(), err)
	}
	// A snippet shows results it does not use: use every variable its top
	// level declares, so that Go's "declared and not used" stays quiet.
	var used []string
	for _, d := range sf.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "Snippet" {
			continue
		}
		for _, st := range fn.Body.List[0].(*ast.BlockStmt).List {
			used = append(used, declared(st)...)
		}
	}
	slices.Sort(used)
	used = slices.Compact(used)
	uses := ""
	for _, n := range used {
		uses += "\t_ = " + n + "\n"
	}
	wrapped = strings.Replace(wrapped, "//line generated-snippet.go:1\n\t}\n}\n", "//line generated-snippet.go:1\n"+uses+"\t}\n}\n", 1)
	if s.Run && usesT(wrapped) {
		return "", false, fmt.Errorf("%s: a run block cannot use t (there is no test to fail)", s.where())
	}
	src, err = withImports(wrapped)
	return src, true, err
}

// splitImports takes the import lines off the top of a block.
func splitImports(code string, line int) (imports, body string, bodyLine int) {
	lines := strings.Split(code, "\n")
	i := 0
	for i < len(lines) {
		l := strings.TrimSpace(lines[i])
		switch {
		case l == "":
			i++
		case strings.HasPrefix(l, "import ("):
			for i < len(lines) && strings.TrimSpace(lines[i]) != ")" {
				imports += lines[i] + "\n"
				i++
			}
			if i < len(lines) {
				imports += lines[i] + "\n"
				i++
			}
		case strings.HasPrefix(l, "import "):
			imports += lines[i] + "\n"
			i++
		default:
			return imports, strings.Join(lines[i:], "\n"), line + i
		}
	}
	return imports, "", line + i
}

// stripComments drops // comments, line by line (enough to find a block's
// first word).
func stripComments(code string) string {
	var b strings.Builder
	for _, l := range strings.Split(code, "\n") {
		if i := strings.Index(l, "//"); i >= 0 {
			l = l[:i]
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// declared returns the variables a statement declares in its scope.
func declared(st ast.Stmt) []string {
	var names []string
	add := func(id *ast.Ident) {
		if id.Name != "_" {
			names = append(names, id.Name)
		}
	}
	switch s := st.(type) {
	case *ast.AssignStmt:
		if s.Tok == token.DEFINE {
			for _, e := range s.Lhs {
				if id, ok := e.(*ast.Ident); ok {
					add(id)
				}
			}
		}
	case *ast.DeclStmt:
		if g, ok := s.Decl.(*ast.GenDecl); ok && g.Tok == token.VAR {
			for _, sp := range g.Specs {
				for _, id := range sp.(*ast.ValueSpec).Names {
					add(id)
				}
			}
		}
	}
	return names
}

// usesT reports whether the statements of src use Snippet's parameter t.
func usesT(src string) bool {
	f, err := parser.ParseFile(token.NewFileSet(), "", src, 0)
	if err != nil {
		return false
	}
	used := false
	ast.Inspect(f, func(n ast.Node) bool {
		id, ok := n.(*ast.Ident)
		if !ok || id.Name != "t" || id.Obj == nil {
			return true
		}
		if fld, ok := id.Obj.Decl.(*ast.Field); ok && slices.ContainsFunc(fld.Names, func(d *ast.Ident) bool { return d != id && d.Name == "t" }) {
			used = true
		}
		return true
	})
	return used
}

// withImports adds the imports of docImports that src's unresolved names
// need (and it does not import itself).
func withImports(src string) (string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "", src, parser.ImportsOnly)
	if err != nil {
		return "", err
	}
	have := map[string]bool{}
	for _, im := range f.Imports {
		path := strings.Trim(im.Path.Value, `"`)
		name := filepath.Base(path)
		if im.Name != nil {
			name = im.Name.Name
		}
		have[name] = true
	}
	full, err := parser.ParseFile(fset, "", src, 0)
	if err != nil {
		return "", err
	}
	var add []string
	for _, id := range full.Unresolved {
		if path, ok := docImports[id.Name]; ok && !have[id.Name] {
			have[id.Name] = true
			add = append(add, fmt.Sprintf("import %s %q\n", id.Name, path))
		}
	}
	slices.Sort(add)
	// After the package clause: the first line of src.
	nl := strings.Index(src, "\n")
	return src[:nl+1] + strings.Join(add, "") + src[nl+1:], nil
}

// docModule writes, in dir, a module holding one package per snippet
// (s000, s001, ...) and the program `run` that calls the run snippets, with
// go.mod replacing this module with repo. It returns the run snippets'
// places, in the order the program runs them.
func docModule(t *testing.T, dir, repo string, snippets []snippet) []string {
	t.Helper()
	mod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	require.NoError(t, err)
	gomod := regexp.MustCompile(`(?m)^module .*$`).ReplaceAllString(string(mod), "module jeteventsdocs")
	gomod += fmt.Sprintf("\nrequire %s v0.0.0-00010101000000-000000000000\n\nreplace %s => %s\n", module, module, repo)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644))
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))

	var runs, calls, imports []string
	var errs []string
	for i, s := range snippets {
		pkg := fmt.Sprintf("s%03d", i)
		src, stmts, err := render(pkg, s)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		require.NoError(t, os.MkdirAll(filepath.Join(dir, pkg), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, pkg, "snippet.go"), []byte(src), 0o644))
		if s.Run && stmts {
			runs = append(runs, s.where())
			imports = append(imports, fmt.Sprintf("\t%s \"jeteventsdocs/%s\"\n", pkg, pkg))
			calls = append(calls, fmt.Sprintf("\t{%q, %s.Snippet},\n", s.where(), pkg))
		} else {
			// Imported all the same, so that building the program
			// compiles every snippet: one build, one link.
			imports = append(imports, fmt.Sprintf("\t_ \"jeteventsdocs/%s\"\n", pkg))
		}
	}
	require.Empty(t, errs, "blocks that are not Go (see the convention at the top of docs_test.go):\n%s", strings.Join(errs, "\n"))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "run"), 0o755))
	prog := strings.Replace(runnerProgram, "\t// IMPORTS\n", strings.Join(imports, ""), 1)
	prog = strings.Replace(prog, "\t// CALLS\n", strings.Join(calls, ""), 1)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "run", "main.go"), []byte(prog), 0o644))
	return runs
}

// runnerProgram runs each run snippet against a fresh embedded server with
// the AUTH_EVENTS and DLQ streams, with a ctx that ends after a second.
const runnerProgram = `package main

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/embedded"
	"github.com/jetevents/events/jetstream"
	// IMPORTS
)

var snippets = []struct {
	where string
	run   func(context.Context, *nats.Conn, *testing.T)
}{
	// CALLS
}

func main() {
	failed := 0
	for _, s := range snippets {
		if err := runOne(s.run); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL %s: %v\n", s.where, err)
			failed++
			continue
		}
		fmt.Printf("ok %s\n", s.where)
	}
	if failed > 0 {
		os.Exit(1)
	}
}

func runOne(snippet func(context.Context, *nats.Conn, *testing.T)) (err error) {
	srv, err := embedded.Start(embedded.Config{ReadyTimeout: time.Minute})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		return err
	}
	setup, cancelSetup := context.WithTimeout(context.Background(), time.Minute)
	defer cancelSetup()
	if _, err := jetstream.Ensure(setup, js, watermill.NopLogger{}, jetstream.AuthEventsStream(), jetstream.DeadLetterStream()); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	snippet(ctx, nc, nil)
	return nil
}
`

// buildDocs compiles the module in dir and returns the compiler's output:
// one go build of the program `run`, which imports every snippet package.
func buildDocs(t *testing.T, dir string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, "bin", "run"), "./run")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestDocs_every_go_block_compiles_and_the_run_ones_run: README.md's ```go
// blocks and the package docs' code blocks, compiled in one build; the
// blocks marked run are run.
func TestDocs_every_go_block_compiles_and_the_run_ones_run(t *testing.T) {
	repo, err := filepath.Abs(".")
	require.NoError(t, err)
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	fromReadme, err := readmeSnippets("README.md", string(readme))
	require.NoError(t, err)
	fromDocs, err := docSnippets(repo, notGoDocBlocks)
	require.NoError(t, err)
	// The extraction itself is checked: a README without blocks, or a
	// walk that found no doc, must not pass as "all compile".
	require.GreaterOrEqual(t, len(fromReadme), 7, "README.md's ```go blocks")
	require.GreaterOrEqual(t, len(fromDocs), 5, "package docs' Go blocks")

	dir := t.TempDir()
	runs := docModule(t, dir, repo, append(fromReadme, fromDocs...))
	require.NotEmpty(t, runs, "some README blocks run")
	out, err := buildDocs(t, dir)
	require.NoError(t, err, "a doc block does not compile (errors name README.md:LINE or the doc's file:line):\n%s", out)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "bin", "run"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "a run block failed:\n%s\n%s", stdout.String(), stderr.String())
	for _, w := range runs {
		assert.Contains(t, stdout.String(), "ok "+w+"\n")
	}
}

// TestDocs_a_block_that_stops_compiling_fails_the_check feeds the same
// machinery broken blocks: a syntax error is reported by the extractor, a
// type error by the build, both naming the README's line; a non-Go code
// block in a package doc that notGoDocBlocks does not list fails too.
func TestDocs_a_block_that_stops_compiling_fails_the_check(t *testing.T) {
	repo, err := filepath.Abs(".")
	require.NoError(t, err)
	readme := strings.Join([]string{
		"# A README", // 1
		"",
		"```go", // 3
		"publisher, err := events.NewPublisher(nc)",
		"```",
		"",
		"```go", // 7
		"e := events.NewEvent(\"user.created\", \"auth-service\", \"org-1\", time.Now(), nil)",
		"events.NoSuchFunction(e) // line 9: does not compile",
		"```",
	}, "\n")
	got, err := readmeSnippets("README.md", readme)
	require.NoError(t, err)
	require.Len(t, got, 2)

	dir := t.TempDir()
	docModule(t, dir, repo, got)
	out, err := buildDocs(t, dir)
	require.Error(t, err, "the build must fail:\n%s", out)
	assert.Contains(t, out, "README.md:9", "the error names the README's line")
	assert.Contains(t, out, "NoSuchFunction")
	assert.NotContains(t, out, "README.md:4", "the block that compiles is not blamed")

	_, _, err = render("s000", snippet{Source: "README.md", Line: 20, Code: "x := events.NewEvent(\n"})
	require.Error(t, err, "a syntax error")
	assert.Contains(t, err.Error(), "README.md:2", "names the README's line")

	docDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(docDir, "doc.go"), []byte("// Package p does things:\n//\n//\tgo run ./cmd/p -flag\npackage p\n"), 0o644))
	docs, err := docSnippets(docDir, nil)
	require.NoError(t, err)
	require.Len(t, docs, 1)
	assert.Equal(t, snippet{Source: "doc.go", Line: 3, Code: "go run ./cmd/p -flag"}, docs[0])
	_, _, err = render("s000", docs[0])
	assert.ErrorContains(t, err, "doc.go:3", "an unlisted shell block in a package doc is not Go")
	docs, err = docSnippets(docDir, map[string][]string{"doc.go": {"go run "}})
	require.NoError(t, err)
	assert.Empty(t, docs, "listed in notGo: skipped")
}

// TestDocs_markers_and_fences_are_read_as_documented: the README side of
// the convention.
func TestDocs_markers_and_fences_are_read_as_documented(t *testing.T) {
	readme := strings.Join([]string{
		"* a list item:", // 1
		"",
		"  <!-- snippet: run", // 3
		"  type Thing struct{}",
		"  -->",
		"  ```go", // 6
		"  x := Thing{}",
		"  ```",
		"",
		"```bash", // 10
		"go test ./...",
		"```",
		"<!-- snippet: -->", // 13
		"```go",
		"func F() {}",
		"```",
	}, "\n")
	got, err := readmeSnippets("R.md", readme)
	require.NoError(t, err)
	assert.Equal(t, []snippet{
		{Source: "R.md", Line: 7, Code: "x := Thing{}", Setup: "type Thing struct{}", SetupLine: 4, Run: true},
		{Source: "R.md", Line: 15, Code: "func F() {}"},
	}, got)

	for name, bad := range map[string]string{
		"marker above a bash fence": "<!-- snippet: run -->\n```bash\nls\n```",
		"marker, blank, fence":      "<!-- snippet: run -->\n\n```go\nx := 1\n```",
		"unknown option":            "<!-- snippet: build -->\n```go\nx := 1\n```",
		"unclosed fence":            "```go\nx := 1\n",
	} {
		_, err := readmeSnippets("R.md", bad)
		assert.Error(t, err, name)
	}

	src, stmts, err := render("p", snippet{Source: "R.md", Line: 7, Code: "x := Thing{}\nvar y = 1", Setup: "type Thing struct{}", SetupLine: 4})
	require.NoError(t, err)
	assert.True(t, stmts)
	assert.Contains(t, src, "\t_ = x\n\t_ = y\n", "unused results are used")
	assert.Contains(t, src, "func Snippet("+freeNames+")")
	assert.Contains(t, src, "//line R.md:7\n")
	_, stmts, err = render("p", snippet{Source: "R.md", Line: 1, Code: "import \"time\"\n\nfunc F() time.Duration { return time.Second }"})
	require.NoError(t, err)
	assert.False(t, stmts, "declarations")
	_, _, err = render("p", snippet{Source: "R.md", Line: 1, Code: "require.NoError(t, nil)", Run: true})
	assert.ErrorContains(t, err, "cannot use t")
	src, stmts, err = render("s001", snippet{Source: "R.md", Line: 3, Code: "// A program.\npackage main\n\nfunc main() {}"})
	require.NoError(t, err)
	assert.False(t, stmts)
	assert.Contains(t, src, "\npackage s001\n", "a whole file keeps its lines, in the snippet's package")
}
