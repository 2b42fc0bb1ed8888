package main

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestKeygen(t *testing.T) {
	out1, errOut, code := ctdb("/nonexistent", "keygen")
	if code != 0 || errOut != "" {
		t.Fatalf("ctdb keygen = exit %d, stderr %q", code, errOut)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out1))
	if err != nil || len(key) != 32 {
		t.Errorf("ctdb keygen printed %q: want 32 bytes of base64 (%v)", out1, err)
	}
	if out2, _, _ := ctdb("/nonexistent", "keygen"); out2 == out1 {
		t.Error("two keys made in a row are equal")
	}
	if _, _, code := ctdb("/nonexistent", "keygen", "extra"); code != 2 {
		t.Errorf("ctdb keygen extra = exit %d, want 2 (usage)", code)
	}
}
