package daemon

import (
	"encoding/json"
	"fmt"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

func ok(v any) control.Response {
	if v == nil {
		return control.Response{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fail(1, "encoding answer: %v", err)
	}
	return control.Response{Data: b}
}

func fail(code int, format string, args ...any) control.Response {
	return control.Response{ExitCode: code, Error: fmt.Sprintf(format, args...)}
}
