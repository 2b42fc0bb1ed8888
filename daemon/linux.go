package daemon

import (
	"log/slog"

	"github.com/ctdb-go/ctdb-go/daemon/netif"
)

func newLinux(log *slog.Logger) (kernel, error) {
	return netif.New(netif.Config{Logger: log})
}
