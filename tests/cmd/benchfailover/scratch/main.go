package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/ctdb-go/ctdb-go/tests/bed"
)

func main() {
	b, err := bed.New(bed.Config{Nodes: 3, Logf: func(f string, a ...any) { fmt.Printf("  | "+f+"\n", a...) }})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.UseDebianCTDB(bed.DebianConfig{}); err != nil {
		panic(err)
	}
	t0 := time.Now()
	if err := b.StartAll(); err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	err = b.WaitHealthy(ctx)
	fmt.Println("healthy:", err, time.Since(t0))
	for i := 0; i < 3; i++ {
		fmt.Printf("--- node %d log\n%s\n", i, b.LogTail(i, 30))
	}
	out, _ := b.Ctdb(0, "status")
	fmt.Println(out)
	out, _ = b.Ctdb(0, "ip", "all")
	fmt.Println(out)
	if len(os.Args) > 1 {
		time.Sleep(time.Hour)
	}
}
