package config

import (
	"errors"
	"io/fs"
	"strings"
)

// parseScriptOptions reads script.options: shell variable assignments the
// event scripts source (load_script_options). ctdbd reads some of them
// too (e.g. CTDB_PARTIALLY_ONLINE_INTERFACES), so each line must be a
// plain assignment whose value is the same whether sh or this reads it:
//
//	NAME=value   NAME='value'   NAME="value"   export NAME=value
//
// optionally followed by a "# comment". Variable expansion ($X, `cmd`),
// several assignments on a line and other shell syntax are errors. A
// variable set twice takes the last value, as in sh, with a warning. A
// missing file is no options.
func parseScriptOptions(path string, p *problems) (map[string]string, bool) {
	opts := map[string]string{}
	lines, err := readLines(path)
	if errors.Is(err, fs.ErrNotExist) {
		return opts, false
	}
	if err != nil {
		p.errorf(path, 0, "%s", fileProblem(err))
		return opts, false
	}
	first := map[string]int{} // name -> line
	for i, raw := range lines {
		n := i + 1
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' {
			continue
		}
		name, value, problem := parseAssignment(line)
		if problem != "" {
			p.errorf(path, n, "%s", problem)
			continue
		}
		if f, dup := first[name]; dup {
			p.warnf(path, n, "%s set again (first at line %d); the last value wins", name, f)
		} else {
			first[name] = n
		}
		opts[name] = value
	}
	return opts, true
}

// parseAssignment parses one trimmed "[export ]NAME=VALUE [# comment]".
func parseAssignment(line string) (name, value, problem string) {
	if rest, ok := strings.CutPrefix(line, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		line = strings.TrimLeft(rest, " \t")
	}
	eq := strings.IndexByte(line, '=')
	if eq < 0 {
		return "", "", "expected a shell assignment NAME=VALUE, got " + quoteLine(line)
	}
	name = line[:eq]
	if !isShellName(name) {
		if strings.TrimRight(name, " \t") != name {
			return "", "", "no blanks allowed before \"=\" in a shell assignment"
		}
		return "", "", "invalid shell variable name " + quoteLine(name)
	}
	value, rest, problem := shellWord(line[eq+1:])
	if problem != "" {
		return "", "", name + ": " + problem
	}
	rest = strings.TrimLeft(rest, " \t")
	if rest != "" && rest[0] != '#' {
		return "", "", name + ": unexpected " + quoteLine(rest) + " after the value (one assignment per line; quote values with blanks)"
	}
	return name, value, ""
}

// shellWord reads one shell word from s, as sh would without expansion,
// and returns it with the rest of s after it.
func shellWord(s string) (word, rest, problem string) {
	var b strings.Builder
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			return b.String(), s[i:], ""
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return "", "", "unterminated ' quote (values must fit on one line)"
			}
			b.WriteString(s[i+1 : i+1+end])
			i += end + 2
		case c == '"':
			i++
			for {
				if i >= len(s) {
					return "", "", "unterminated \" quote (values must fit on one line)"
				}
				c = s[i]
				if c == '"' {
					i++
					break
				}
				if c == '$' || c == '`' {
					return "", "", "variable or command expansion is not supported; write the value out"
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
				return "", "", "backslash at end of line (values must fit on one line)"
			}
			b.WriteByte(s[i+1])
			i += 2
		case c == '$' || c == '`':
			return "", "", "variable or command expansion is not supported; write the value out"
		case strings.IndexByte(";&|<>()", c) >= 0:
			return "", "", "shell syntax " + quoteLine(string(c)) + " is not supported; quote the value"
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), "", ""
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
