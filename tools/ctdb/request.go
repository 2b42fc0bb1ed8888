package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ctdb-go/ctdb-go/daemon/control"
)

// send sends one control about e.target and handles what every command
// handles alike: connection failures and timeouts, the daemon's Notice
// (stderr, not an error) and Error (stderr, exit code). ok is false when
// the command should stop and exit with code.
func (e *env) send(req control.Request) (resp control.Response, code int, ok bool) {
	req.Target = e.target
	timeout := e.callTimeout
	if timeout <= 0 {
		timeout = e.timeout
	}
	ctx, cancel := context.WithTimeout(e.ctx, timeout)
	defer cancel()
	resp, err := control.Call(ctx, e.socket, req)
	if err != nil {
		// When -T is what ran out, the call's deadline is -T's.
		callDL, _ := ctx.Deadline()
		runDL, limited := e.ctx.Deadline()
		switch {
		case e.ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded) && limited && !runDL.After(callDL):
			fmt.Fprintln(e.stderr, "Maximum runtime exceeded - exiting")
		case errors.Is(err, context.DeadlineExceeded):
			fmt.Fprintf(e.stderr, "ctdb: %s: no answer from ctdbd at %s within %v\n", req.Command, e.socket, timeout)
		default:
			fmt.Fprintf(e.stderr, "ctdb: %v\n", err)
		}
		return resp, 1, false
	}
	if resp.Notice != "" {
		fmt.Fprintln(e.stderr, strings.TrimRight(resp.Notice, "\n"))
	}
	if resp.Error != "" {
		fmt.Fprintf(e.stderr, "ctdb: %s\n", strings.TrimRight(resp.Error, "\n"))
		if resp.ExitCode == 0 {
			return resp, 1, false
		}
		return resp, resp.ExitCode, false
	}
	return resp, resp.ExitCode, true
}

// fetch is send plus decoding the answer's data into v.
func (e *env) fetch(req control.Request, v any) (resp control.Response, code int, ok bool) {
	resp, code, ok = e.send(req)
	if !ok {
		return resp, code, false
	}
	if len(resp.Data) == 0 {
		fmt.Fprintf(e.stderr, "ctdb: ctdbd answered %s without data\n", req.Command)
		return resp, 1, false
	}
	if c, ok := decode(e, req.Command, resp.Data, v); !ok {
		return resp, c, false
	}
	return resp, code, true
}

// decode reads an answer's data into v, saying so when it cannot.
func decode(e *env, command string, data json.RawMessage, v any) (code int, ok bool) {
	if err := json.Unmarshal(data, v); err != nil {
		fmt.Fprintf(e.stderr, "ctdb: reading ctdbd's answer to %s: %v\n", command, err)
		return 1, false
	}
	return 0, true
}

// query is what most commands do: fetch, and with --json print the data as
// it came. The caller prints its text layout only when !e.json.
func (e *env) query(req control.Request, v any) (code int, ok bool) {
	resp, code, ok := e.fetch(req, v)
	if !ok {
		return code, false
	}
	if e.json {
		e.printJSON(resp.Data)
	}
	return code, true
}

// act sends a control that answers no data (disable, moveip, ...); with
// --json, data it does send is printed.
func (e *env) act(req control.Request) int {
	resp, code, ok := e.send(req)
	if !ok {
		return code
	}
	if e.json {
		e.printJSON(resp.Data)
	}
	return code
}

func (e *env) printJSON(data json.RawMessage) {
	if len(data) == 0 {
		return
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		buf.Reset()
		buf.Write(data)
	}
	buf.WriteByte('\n')
	e.stdout.Write(buf.Bytes())
}

// pnn is the PNN of the node the command is about, for headers such as
// "Interfaces on node N": the -n value, or this node's, asked of ctdbd.
func (e *env) pnn() (pnn, code int, ok bool) {
	if e.target >= 0 {
		return e.target, 0, true
	}
	var p control.PNN
	if _, code, ok := e.fetch(control.Request{Command: control.CmdPNN}, &p); !ok {
		return 0, code, false
	}
	return p.PNN, 0, true
}

// nodes lists the PNNs -n names; "all" is every node of `listnodes`
// that is not deleted, asked of this node.
func (e *env) nodes() ([]int, int, bool) {
	pnns, err := parseNodes(e.node)
	if err != nil {
		fmt.Fprintf(e.stderr, "ctdb: %v\n", err)
		return nil, 2, false
	}
	if pnns != nil {
		return pnns, 0, true
	}
	el := *e
	el.target = control.ThisNode
	el.callTimeout = e.timeout
	var list []control.NodeAddr
	if _, code, ok := el.fetch(control.Request{Command: control.CmdListNodes}, &list); !ok {
		return nil, code, false
	}
	for _, n := range list {
		if !n.Deleted {
			pnns = append(pnns, n.PNN)
		}
	}
	return pnns, 0, true
}

// usage prints the command's usage on stderr and returns the exit code
// for a usage error.
func (e *env) usage(name string) int {
	if c, ok := commands[name]; ok {
		fmt.Fprint(e.stderr, usageText(c))
	}
	return 2
}

// row prints one line of machine-readable output: |f1|f2|...|.
func (e *env) row(fields ...string) {
	fmt.Fprintf(e.stdout, "%s%s%s\n", e.sep, strings.Join(fields, e.sep), e.sep)
}

// ctime formats t as ctime(3) does, in the local zone:
// "Mon Nov 23 18:28:09 2026".
func (e *env) ctime(t time.Time) string {
	loc := e.loc
	if loc == nil {
		loc = time.Local
	}
	return t.In(loc).Format("Mon Jan _2 15:04:05 2006")
}
