package config

import (
	"fmt"
	"strings"
)

// Error is one problem in one configuration file. Line is 1-based; 0 means
// the problem is with the file as a whole (missing, empty, unreadable).
type Error struct {
	File string
	Line int
	Msg  string
}

// Error renders the problem as "FILE:LINE: msg", or "FILE: msg" when Line
// is 0, the form editors and grep understand.
func (e Error) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Errors is every problem Load found, in file order: Load does not stop at
// the first one, so a single ctdbd --check-config shows them all.
type Errors []Error

// Error renders one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// As lets errors.As find an Errors through a *Errors target as well as an
// Errors one, so callers may write either.
func (es Errors) As(target any) bool {
	if p, ok := target.(**Errors); ok {
		c := es
		*p = &c
		return true
	}
	return false
}

// problems collects Errors and warnings while files are read.
type problems struct {
	errs     Errors
	warnings []Error
}

func (p *problems) errorf(file string, line int, format string, args ...any) {
	p.errs = append(p.errs, Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) warnf(file string, line int, format string, args ...any) {
	p.warnings = append(p.warnings, Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// err returns the collected errors as an error, or nil (untyped) if none.
func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return p.errs
}
