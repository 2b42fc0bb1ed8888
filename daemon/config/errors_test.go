package config

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"line", Error{File: "/etc/ctdb/nodes", Line: 3, Msg: "invalid node address \"x\""}, `/etc/ctdb/nodes:3: invalid node address "x"`},
		{"whole file", Error{File: "/etc/ctdb/nodes", Msg: "no node addresses"}, "/etc/ctdb/nodes: no node addresses"},
		{"errors", Errors{{File: "a", Line: 1, Msg: "x"}, {File: "b", Msg: "y"}}, "a:1: x\nb: y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorsAs(t *testing.T) {
	want := Errors{{File: "a", Line: 1, Msg: "x"}}
	err := fmt.Errorf("loading: %w", error(want))

	var byValue Errors
	if !errors.As(err, &byValue) || len(byValue) != 1 || byValue[0] != want[0] {
		t.Errorf("errors.As(Errors) = %v, want %v", byValue, want)
	}
	var byPointer *Errors
	if !errors.As(err, &byPointer) || byPointer == nil || len(*byPointer) != 1 || (*byPointer)[0] != want[0] {
		t.Errorf("errors.As(*Errors) = %v, want %v", byPointer, want)
	}
	var other *Error
	if errors.As(err, &other) {
		t.Errorf("errors.As(*Error) = true, want false")
	}
}
