//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "benchrun: Linux only (it reads /proc for memory figures)")
	os.Exit(1)
}
