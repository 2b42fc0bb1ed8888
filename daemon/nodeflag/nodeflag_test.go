package nodeflag

import "testing"

func TestString(t *testing.T) {
	tests := []struct {
		f    Flags
		want string
	}{
		{0, "OK"},
		{Unhealthy, "UNHEALTHY"},
		{PermanentlyDisabled, "DISABLED"},
		{Disconnected | Unhealthy, "DISCONNECTED|UNHEALTHY|INACTIVE"},
		{Stopped, "STOPPED|INACTIVE"},
		{Banned, "BANNED|INACTIVE"},
		{Unhealthy | Stopped, "UNHEALTHY|STOPPED|INACTIVE"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("Flags(%#x).String() = %q, want %q", uint32(tt.f), got, tt.want)
		}
	}
}

func TestCanHost(t *testing.T) {
	if !Flags(0).CanHost() {
		t.Error("Flags(0).CanHost() = false, want true")
	}
	for _, f := range []Flags{Disconnected, Unhealthy, PermanentlyDisabled, Banned, Deleted, Stopped} {
		if f.CanHost() {
			t.Errorf("Flags(%v).CanHost() = true, want false", f)
		}
	}
}
