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
// sees its context canceled and stops at its own safe point, saying what
// it left: convert and upload remove what they started (upload says how to
// resume), a change to an image is refused before it starts or finished and
// verified. A second signal stops vhdprep at once, saying so.
type interrupts struct {
	mu       sync.Mutex
	stopNow  bool
	signaled os.Signal
}

// catchInterrupts returns a context that the first signal cancels.
func catchInterrupts() (context.Context, *interrupts) {
	ctx, cancel := context.WithCancel(context.Background())
	in := &interrupts{}
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-ch
		in.mu.Lock()
		if in.stopNow {
			fmt.Fprintf(os.Stderr, "vhdprep: stopped by %s; the image was not changed\n", signalName(s))
			os.Exit(exitInterrupted)
		}
		in.signaled = s
		in.mu.Unlock()
		cancel()
		s = <-ch
		fmt.Fprintf(os.Stderr, "vhdprep: stopped at once by a second %s; a change to an image left half-done is undone by the next vhdprep command that opens it\n", signalName(s))
		os.Exit(exitInterrupted)
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

// caught is the signal that came, or nil.
func (in *interrupts) caught() os.Signal {
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.signaled
}

// interrupted is the error of a command that stopped at a safe point
// after a signal, saying what state it left.
func interrupted(state string) error {
	return interruptedError{fmt.Sprintf("stopped by %s; %s", signalName(signals.caught()), state)}
}

// signalName names the signal as kill(1) does.
func signalName(s os.Signal) string {
	if s == syscall.SIGTERM {
		return "SIGTERM"
	}
	return "SIGINT"
}
