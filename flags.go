package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// flagSet wraps flag.FlagSet so that every flag has an EVENTFOLD_* twin:
// the environment gives the default, the command line wins.
type flagSet struct {
	*flag.FlagSet
	errs []error
}

func newFlagSet(name, usage string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError)}
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "%s\n\nFlags (each also read from the environment variable shown):\n", usage)
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(out, "  --%s (%s)\n\t%s", f.Name, envName(f.Name), f.Usage)
			if f.DefValue != "" {
				fmt.Fprintf(out, " (default %q)", f.DefValue)
			}
			fmt.Fprintln(out)
		})
	}
	return fs
}

// envName maps a flag name to its environment twin: --http-addr is
// EVENTFOLD_HTTP_ADDR.
func envName(flagName string) string {
	return "EVENTFOLD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (fs *flagSet) env(name string) (string, bool) {
	return os.LookupEnv(envName(name))
}

// fromEnv is the default of flag name: its EVENTFOLD_* twin, parsed, when
// the environment sets it, else def. A twin that does not parse is kept
// as an error for parse to report.
func fromEnv[T any](fs *flagSet, name string, def T, parse func(string) (T, error), kind string) T {
	v, ok := fs.env(name)
	if !ok {
		return def
	}
	x, err := parse(v)
	if err != nil {
		fs.errs = append(fs.errs, fmt.Errorf("%s=%q is not %s", envName(name), v, kind))
		return def
	}
	return x
}

func (fs *flagSet) stringVar(p *string, name, def, usage string) {
	fs.StringVar(p, name, fromEnv(fs, name, def, func(v string) (string, error) { return v, nil }, "a string"), usage)
}

func (fs *flagSet) intVar(p *int, name string, def int, usage string) {
	fs.IntVar(p, name, fromEnv(fs, name, def, strconv.Atoi, "an integer"), usage)
}

func (fs *flagSet) durationVar(p *time.Duration, name string, def time.Duration, usage string) {
	fs.DurationVar(p, name, fromEnv(fs, name, def, time.ParseDuration, "a duration"), usage)
}

func (fs *flagSet) boolVar(p *bool, name string, def bool, usage string) {
	fs.BoolVar(p, name, fromEnv(fs, name, def, strconv.ParseBool, "a boolean"), usage)
}

// secretVar is stringVar for a secret: --help must not print the value
// the environment gave as the default.
func (fs *flagSet) secretVar(p *string, name, usage string) {
	fs.StringVar(p, name, "", usage)
	if v, ok := fs.env(name); ok {
		*p = v
	}
}

// parse parses args and reports bad environment values too.
func (fs *flagSet) parse(args []string) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return err
	case err != nil:
		return fmt.Errorf("%w: %w", errUsage, err)
	case len(fs.errs) > 0:
		return fmt.Errorf("%w: %w", errUsage, fs.errs[0])
	case fs.NArg() > 0:
		return fmt.Errorf("%w: unexpected arguments: %s", errUsage, strings.Join(fs.Args(), " "))
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
