package config

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// parseScriptOptions reads script.options: shell variable assignments the
// event scripts source (load_script_options). ctdbd may read some of them
// too, so each line must be a plain assignment that sh (POSIX sh; dash on
// Debian) reads as this does:
//
//	NAME=value   NAME='value'   NAME="value"   export NAME=value
//
// optionally followed by a "# comment". A variable set twice takes the
// last value, as in sh, with a warning. A missing file is no options.
//
// A value may use other variables, as $NAME or ${NAME} (CTDB's own
// script.options does: CTDB_NFS_CALLOUT="${CTDB_BASE}/nfs-callout").
// Only sh knows their values, so such a value is not in the first map but
// in the second, as its sh text; the scripts see it expanded.
//
// Errors, because sh would read the line otherwise than this or do more
// than assign: a carriage return (a file saved with CRLF line ends) or
// another control character anywhere; command substitution ($(...),
// `...`), arithmetic ($((...))), other ${...} forms and special
// parameters ($1, $$); an unquoted ~ where sh expands it (at the start of
// a value or after a ":"); $'...' and $"..." (dash and bash differ);
// unbalanced quotes, a backslash at the end of a line; several
// assignments on a line; and other shell syntax (; & | < > ( )).
func parseScriptOptions(path string, p *problems) (opts, shellText map[string]string, found bool) {
	opts, shellText = map[string]string{}, map[string]string{}
	lines, err := readLines(path)
	if errors.Is(err, fs.ErrNotExist) {
		return opts, shellText, false
	}
	if err != nil {
		p.errorf(path, 0, "%s", fileProblem(err))
		return opts, shellText, false
	}
	first := map[string]int{} // name -> line
	for i, raw := range lines {
		n := i + 1
		if problem := controlChars(raw); problem != "" {
			p.errorf(path, n, "%s", problem)
			continue
		}
		line := strings.Trim(raw, " \t")
		if line == "" || line[0] == '#' {
			continue
		}
		a, problem := parseAssignment(line)
		if problem != "" {
			p.errorf(path, n, "%s", problem)
			continue
		}
		if f, dup := first[a.name]; dup {
			p.warnf(path, n, "%s set again (first at line %d); the last value wins", a.name, f)
		} else {
			first[a.name] = n
		}
		delete(opts, a.name)
		delete(shellText, a.name)
		if a.expands {
			shellText[a.name] = a.text
		} else {
			opts[a.name] = a.value
		}
	}
	return opts, shellText, true
}

// controlChars says what is wrong with a line holding a control
// character other than a tab, "" if nothing: sh keeps a carriage return
// or a vertical tab in the value, where a reader of the file sees none.
func controlChars(line string) string {
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\r':
			return "carriage return in the line (saved with CRLF line ends? sh keeps it in the value): use LF line ends"
		case c < ' ' && c != '\t', c == 0x7f:
			return fmt.Sprintf("control character %q in the line: sh keeps it in the value", c)
		}
	}
	return ""
}

// assignment is one parsed script.options line.
type assignment struct {
	name    string
	value   string // as sh assigns it, when !expands
	text    string // the value as written, for sh
	expands bool   // the value uses $NAME or ${NAME}
}

// parseAssignment parses one trimmed "[export ]NAME=VALUE [# comment]".
func parseAssignment(line string) (assignment, string) {
	if rest, ok := strings.CutPrefix(line, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		line = strings.TrimLeft(rest, " \t")
	}
	eq := strings.IndexByte(line, '=')
	if eq < 0 {
		return assignment{}, "expected a shell assignment NAME=VALUE, got " + quoteLine(line)
	}
	name := line[:eq]
	if !isShellName(name) {
		if strings.TrimRight(name, " \t") != name {
			return assignment{}, "no blanks allowed before \"=\" in a shell assignment"
		}
		return assignment{}, "invalid shell variable name " + quoteLine(name)
	}
	w, problem := shellWord(line[eq+1:])
	if problem != "" {
		return assignment{}, name + ": " + problem
	}
	rest := strings.TrimLeft(w.rest, " \t")
	if rest != "" && rest[0] != '#' {
		return assignment{}, name + ": unexpected " + quoteLine(rest) + " after the value (one assignment per line; quote values with blanks)"
	}
	text := line[eq+1 : len(line)-len(w.rest)]
	return assignment{name: name, value: w.value, text: text, expands: w.expands}, ""
}

// word is one shell word read by shellWord.
type word struct {
	value   string // the word after quote removal; expansions kept as written
	rest    string // what follows the word
	expands bool   // the word has a $NAME or ${NAME} expansion
}

const (
	errExpansion = "command substitution, arithmetic and ${...} forms other than ${NAME} are not supported; write the value out, or use $NAME or ${NAME}"
	errDollar    = "a $ that starts no $NAME or ${NAME}: write \\$ for a dollar sign"
)

// shellWord reads one shell word from s, the value of an assignment, as
// sh would read it; see parseScriptOptions for what it refuses.
func shellWord(s string) (word, string) {
	var w word
	var b strings.Builder
	i := 0
	// tildeOK: an unquoted ~ here would be expanded by sh (the start of
	// the value, or just after an unquoted ":").
	tildeOK := true
	for i < len(s) {
		c := s[i]
		atTilde := tildeOK
		tildeOK = false
		switch {
		case c == ' ' || c == '\t':
			w.value, w.rest = b.String(), s[i:]
			return w, ""
		case c == '~' && atTilde:
			return w, "an unquoted ~ at the start of a value or after \":\" is expanded by sh to a home directory; quote it ('~') or write the path out"
		case c == ':':
			b.WriteByte(c)
			i++
			tildeOK = true
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return w, "unterminated ' quote (values must fit on one line)"
			}
			b.WriteString(s[i+1 : i+1+end])
			i += end + 2
		case c == '"':
			i++
			for {
				if i >= len(s) {
					return w, "unterminated \" quote (values must fit on one line)"
				}
				c = s[i]
				if c == '"' {
					i++
					break
				}
				if c == '`' {
					return w, errExpansion
				}
				if c == '$' {
					n, problem := expansion(s[i:], true)
					if problem != "" {
						return w, problem
					}
					if n == 1 { // a lone $ before the closing quote
						b.WriteByte('$')
						i++
						continue
					}
					w.expands = true
					b.WriteString(s[i : i+n])
					i += n
					continue
				}
				if c == '\\' && i+1 < len(s) && strings.IndexByte("\\\"$`", s[i+1]) >= 0 {
					i++
					c = s[i]
				}
				b.WriteByte(c)
				i++
			}
		case c == '\\':
			if i+1 >= len(s) {
				return w, "backslash at end of line (values must fit on one line)"
			}
			b.WriteByte(s[i+1])
			i += 2
		case c == '`':
			return w, errExpansion
		case c == '$':
			n, problem := expansion(s[i:], false)
			if problem != "" {
				return w, problem
			}
			if n > 1 {
				w.expands = true
			}
			b.WriteString(s[i : i+n])
			i += n
		case strings.IndexByte(";&|<>()", c) >= 0:
			return w, "shell syntax " + quoteLine(string(c)) + " is not supported; quote the value"
		default:
			b.WriteByte(c)
			i++
		}
	}
	w.value = b.String()
	return w, ""
}

// expansion measures the $NAME or ${NAME} that s starts with (s[0] is
// '$'): its length, 1 for a $ sh takes literally (at the end of the
// word, or, inDouble, before the closing quote), or a problem.
func expansion(s string, inDouble bool) (int, string) {
	if len(s) == 1 {
		return 1, ""
	}
	switch c := s[1]; {
	case c == '{':
		end := strings.IndexByte(s, '}')
		if end < 0 || !isShellName(s[2:end]) {
			return 0, errExpansion
		}
		return end + 1, ""
	case c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z':
		n := 2
		for n < len(s) && (s[n] == '_' || s[n] >= 'A' && s[n] <= 'Z' || s[n] >= 'a' && s[n] <= 'z' || s[n] >= '0' && s[n] <= '9') {
			n++
		}
		return n, ""
	case c == '(':
		return 0, errExpansion
	case inDouble && c == '"', !inDouble && (c == ' ' || c == '\t'):
		return 1, ""
	}
	return 0, errDollar
}

func isShellName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// quoteLine quotes text for a message, shortened if long.
func quoteLine(s string) string {
	const max = 60
	if len(s) > max {
		s = s[:max] + "..."
	}
	return "\"" + s + "\""
}
