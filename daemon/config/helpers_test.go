package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// threeNodes is a valid nodes file for tests about other files.
const threeNodes = "198.18.0.1\n198.18.0.2\n198.18.0.3\n"

// testKey is a gossip key file: one 32-byte key.
const testKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"

// writeDir writes files (name -> content) into a fresh directory and
// returns it. A "nodes" file (three nodes) and a "gossip.key" (testKey,
// mode 0600) are added unless files has them; a value "-" leaves a file
// out.
func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if _, ok := files["nodes"]; !ok {
		files["nodes"] = threeNodes
	}
	if _, ok := files[GossipKeyFileName]; !ok {
		files[GossipKeyFileName] = testKey
	}
	for name, content := range files {
		if content == "-" {
			continue
		}
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if name == GossipKeyFileName {
			mode = 0o600
		}
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// errorLines returns err's lines with dir written as DIR.
func errorLines(t *testing.T, err error, dir string) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v (%T) is not an Errors", err, err)
	}
	var lines []string
	for _, e := range errs {
		lines = append(lines, strings.ReplaceAll(e.Error(), dir, "DIR"))
	}
	return lines
}

// warningLines renders warnings as errorLines does.
func warningLines(ws []Error, dir string) []string {
	var lines []string
	for _, w := range ws {
		lines = append(lines, strings.ReplaceAll(w.Error(), dir, "DIR"))
	}
	return lines
}

// writeFile replaces a file's content.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
