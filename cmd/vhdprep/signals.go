package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// readOnly names the commands that only read an image: nothing they do
// needs finishing, so the first SIGINT or SIGTERM stops them at once.
var readOnly = map[string]bool{"cat": true, "check": true, "info": true, "inspect": true, "ls": true}

// interrupts decides what the first SIGINT or SIGTERM does. A command that
// only reads is stopped there and then, once the restore of an interrupted
// change, which runs before every command, is over. Every other command
// sees its context canceled and stops at its own safe point: convert and
// upload remove what they started, a change to an image is finished or
// undone. A second signal gets the default action, so an impatient user
// can force the exit.
type interrupts struct {
	mu       sync.Mutex
	stopNow  bool
	signaled os.Signal
}

// catchInterrupts returns a context that the first signal cancels.
func catchInterrupts() (context.Context, *interrupts) {
	ctx, cancel := context.WithCancel(context.Background())
	in := &interrupts{}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-ch
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		in.mu.Lock()
		defer in.mu.Unlock()
		if in.stopNow {
			fmt.Fprintf(os.Stderr, "vhdprep: stopped by %s; the image was not changed\n", signalName(s))
			os.Exit(exitInterrupted)
		}
		in.signaled = s
		cancel()
	}()
	return ctx, in
}

// readOnlyFromHere says that the command from here on only reads, so a
// signal may stop it at once; a signal that came before stops it now. It
// does nothing without signal handling (in tests).
func (in *interrupts) readOnlyFromHere() error {
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.signaled != nil {
		return interruptedError{fmt.Sprintf("stopped by %s; the image was not changed", signalName(in.signaled))}
	}
	in.stopNow = true
	return nil
}

// signalName names the signal as kill(1) does.
func signalName(s os.Signal) string {
	if s == syscall.SIGTERM {
		return "SIGTERM"
	}
	return "SIGINT"
}
