package member

import (
	"context"
	"log/slog"
	"strings"
)

// logWriter turns memberlist's log lines ("[DEBUG] memberlist: Stream
// connection from=...") into slog records, taking the level from the
// bracketed prefix. memberlist writes one line per Write.
type logWriter struct {
	log *slog.Logger
}

func (w logWriter) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(p), "\n"), "\n") {
		level, msg := parseLogLine(line)
		w.log.Log(context.Background(), level, msg)
	}
	return len(p), nil
}

// parseLogLine splits a memberlist log line into a level and the message
// without the level and the "memberlist: " prefix. A line without a known
// level (memberlist has a few) is logged at Info.
func parseLogLine(line string) (slog.Level, string) {
	level := slog.LevelInfo
	if rest, ok := strings.CutPrefix(line, "["); ok {
		if tag, msg, ok := strings.Cut(rest, "]"); ok {
			known := true
			switch strings.ToUpper(tag) {
			case "TRACE", "DEBUG":
				level = slog.LevelDebug
			case "INFO":
				level = slog.LevelInfo
			case "WARN", "WARNING":
				level = slog.LevelWarn
			case "ERR", "ERROR":
				level = slog.LevelError
			default:
				known = false
			}
			if known {
				line = strings.TrimSpace(msg)
			}
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	return level, line
}
