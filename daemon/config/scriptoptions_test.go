package config

import (
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestScriptOptions(t *testing.T) {
	tests := []struct {
		name     string
		file     string // "-": no file
		want     map[string]string
		shell    map[string]string // ScriptOptionsShell; nil: empty
		errs     []string
		warnings []string
	}{
		{name: "missing", file: "-", want: map[string]string{}},
		{
			name: "assignments",
			file: "# comment\n\n" +
				"CTDB_PARTIALLY_ONLINE_INTERFACES=yes\n" +
				"  CTDB_POSTGRES_PORT=5432   # trailing comment\n" +
				"CTDB_POSTGRES_HOST=\"/run/postgresql\"\n" +
				"SINGLE='a $literal `value` with \"quotes\"'\n" +
				"DOUBLE=\"a \\\"quoted\\\" \\$x and \\\\ and \\n\"\n" +
				"MIXED=ab'c d'\"e f\"g\n" +
				"ESCAPED=a\\ b\n" +
				"EMPTY=\n" +
				"EMPTY2=''\n" +
				"export EXPORTED=1\n" +
				"HASH=a#b\n" +
				"_x1=v\n",
			want: map[string]string{
				"CTDB_PARTIALLY_ONLINE_INTERFACES": "yes",
				"CTDB_POSTGRES_PORT":               "5432",
				"CTDB_POSTGRES_HOST":               "/run/postgresql",
				"SINGLE":                           "a $literal `value` with \"quotes\"",
				"DOUBLE":                           "a \"quoted\" $x and \\ and \\n",
				"MIXED":                            "abc de fg",
				"ESCAPED":                          "a b",
				"EMPTY":                            "",
				"EMPTY2":                           "",
				"EXPORTED":                         "1",
				"HASH":                             "a#b",
				"_x1":                              "v",
			},
		},
		{
			name:     "set twice: last wins, with a warning",
			file:     "A=1\nB=2\nA=3\n",
			want:     map[string]string{"A": "3", "B": "2"},
			warnings: []string{"DIR/script.options:3: A set again (first at line 1); the last value wins"},
		},
		{
			name: "every error class",
			file: "echo hello\n" +
				"A = 1\n" +
				"1A=x\n" +
				"A-B=x\n" +
				"A=$(date)\n" +
				"A=\"${X:-y}\"\n" +
				"A=`date`\n" +
				"A=a b\n" +
				"A=1 B=2\n" +
				"A='open\n" +
				"A=\"open\n" +
				"A=x\\\n" +
				"A=x;rm -rf /\n" +
				"A=(1 2)\n" +
				"[section]\n" +
				"A=x\r\n" +
				"# comment\r\n" +
				"A=a\vb\n" +
				"A=\"a\x01\"\n" +
				"A=~/x\n" +
				"A=/bin:~/bin\n" +
				"A=$1\n" +
				"A=\"$$\"\n" +
				"A=$'x'\n" +
				"A=$((1+1))\n" +
				"export A=~\n" +
				"A=x\x7f\n",
			errs: []string{
				`DIR/script.options:1: expected a shell assignment NAME=VALUE, got "echo hello"`,
				`DIR/script.options:2: no blanks allowed before "=" in a shell assignment`,
				`DIR/script.options:3: invalid shell variable name "1A"`,
				`DIR/script.options:4: invalid shell variable name "A-B"`,
				`DIR/script.options:5: A: command substitution, arithmetic and ${...} forms other than ${NAME} are not supported; write the value out, or use $NAME or ${NAME}`,
				`DIR/script.options:6: A: command substitution, arithmetic and ${...} forms other than ${NAME} are not supported; write the value out, or use $NAME or ${NAME}`,
				`DIR/script.options:7: A: command substitution, arithmetic and ${...} forms other than ${NAME} are not supported; write the value out, or use $NAME or ${NAME}`,
				`DIR/script.options:8: A: unexpected "b" after the value (one assignment per line; quote values with blanks)`,
				`DIR/script.options:9: A: unexpected "B=2" after the value (one assignment per line; quote values with blanks)`,
				`DIR/script.options:10: A: unterminated ' quote (values must fit on one line)`,
				`DIR/script.options:11: A: unterminated " quote (values must fit on one line)`,
				`DIR/script.options:12: A: backslash at end of line (values must fit on one line)`,
				`DIR/script.options:13: A: shell syntax ";" is not supported; quote the value`,
				`DIR/script.options:14: A: shell syntax "(" is not supported; quote the value`,
				`DIR/script.options:15: expected a shell assignment NAME=VALUE, got "[section]"`,
				`DIR/script.options:16: carriage return in the line (saved with CRLF line ends? sh keeps it in the value): use LF line ends`,
				`DIR/script.options:17: carriage return in the line (saved with CRLF line ends? sh keeps it in the value): use LF line ends`,
				`DIR/script.options:18: control character '\v' in the line: sh keeps it in the value`,
				`DIR/script.options:19: control character '\x01' in the line: sh keeps it in the value`,
				`DIR/script.options:20: A: an unquoted ~ at the start of a value or after ":" is expanded by sh to a home directory; quote it ('~') or write the path out`,
				`DIR/script.options:21: A: an unquoted ~ at the start of a value or after ":" is expanded by sh to a home directory; quote it ('~') or write the path out`,
				`DIR/script.options:22: A: a $ that starts no $NAME or ${NAME}: write \$ for a dollar sign`,
				`DIR/script.options:23: A: a $ that starts no $NAME or ${NAME}: write \$ for a dollar sign`,
				`DIR/script.options:24: A: a $ that starts no $NAME or ${NAME}: write \$ for a dollar sign`,
				`DIR/script.options:25: A: command substitution, arithmetic and ${...} forms other than ${NAME} are not supported; write the value out, or use $NAME or ${NAME}`,
				`DIR/script.options:26: A: an unquoted ~ at the start of a value or after ":" is expanded by sh to a home directory; quote it ('~') or write the path out`,
				`DIR/script.options:27: control character '\x7f' in the line: sh keeps it in the value`,
			},
		},
		{
			name: "expansions are left to sh",
			file: "CTDB_NFS_CALLOUT=\"${CTDB_BASE}/nfs-callout\"\n" +
				"P=$CTDB_BASE/x:'~'\n" +
				"L=\"cost: 5$\"\n" +
				"T=a~b:c\\~\n" +
				"D=$\n",
			want:  map[string]string{"L": "cost: 5$", "T": "a~b:c~", "D": "$"},
			shell: map[string]string{"CTDB_NFS_CALLOUT": `"${CTDB_BASE}/nfs-callout"`, "P": "$CTDB_BASE/x:'~'"},
		},
		{
			name:     "a later literal value replaces an expansion",
			file:     "A=$X\nA=1\n",
			want:     map[string]string{"A": "1"},
			shell:    map[string]string{},
			warnings: []string{"DIR/script.options:2: A set again (first at line 1); the last value wins"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeDir(t, map[string]string{"script.options": tt.file})
			c, err := Load(dir)
			if diff := cmp.Diff(tt.errs, errorLines(t, err, dir)); diff != "" {
				t.Fatalf("Load errors (-want +got):\n%s", diff)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, c.ScriptOptions); diff != "" {
				t.Errorf("ScriptOptions (-want +got):\n%s", diff)
			}
			wantShell := tt.shell
			if wantShell == nil {
				wantShell = map[string]string{}
			}
			if diff := cmp.Diff(wantShell, c.ScriptOptionsShell); diff != "" {
				t.Errorf("ScriptOptionsShell (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, warningLines(c.Warnings, dir)); diff != "" {
				t.Errorf("Warnings (-want +got):\n%s", diff)
			}
			wantFile := filepath.Join(dir, "script.options")
			if tt.file == "-" {
				wantFile = ""
			}
			if c.ScriptOptionsFile != wantFile {
				t.Errorf("ScriptOptionsFile = %q, want %q", c.ScriptOptionsFile, wantFile)
			}
		})
	}
}

// TestScriptOptionsAsShell checks that what Load reads is what sh reads
// when the event scripts source the file.
func TestScriptOptionsAsShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("the event scripts need sh: %v", err)
	}
	file := "A=yes\nB='x $y `z`'\nC=\"q \\\"r\\\" \\$s \\\\ \\t\"\nD=ab'c d'\"e\"f\\ g   # c\nexport E=1\n"
	dir := writeDir(t, map[string]string{"script.options": file})
	c, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for name, want := range c.ScriptOptions {
		out, err := exec.Command(sh, "-c", `. "$1"; eval "printf %s \"\$$2\""`, "sh", filepath.Join(dir, "script.options"), name).Output()
		if err != nil {
			t.Fatalf("sh: %v", err)
		}
		if got := string(out); got != want {
			t.Errorf("%s: sh reads %q, Load reads %q", name, got, want)
		}
	}
	if got := strings.Join(slices.Sorted(maps.Keys(c.ScriptOptions)), " "); got != "A B C D E" {
		t.Errorf("names = %s, want A B C D E", got)
	}
}
