package kubefile

import (
	"encoding/json"
	"regexp"
	"strings"
	"unicode"

	"github.com/Masterminds/semver/v3"

	"github.com/cnstack/cnstack/pkg/oci"
)

// unsupportedHints says, for Dockerfile keywords cnstack rejects, what to do instead.
var unsupportedHints = map[string]string{
	"EXPOSE":      "a cluster image is never run as a container, so ports, users and volumes mean nothing here",
	"USER":        "a cluster image is never run as a container, so ports, users and volumes mean nothing here",
	"VOLUME":      "a cluster image is never run as a container, so ports, users and volumes mean nothing here",
	"HEALTHCHECK": "a cluster image is never run as a container",
	"STOPSIGNAL":  "a cluster image is never run as a container",
	"ENTRYPOINT":  "to run something at install time use LAUNCH [\"app\"] or CMDS [\"command line\"]",
	"WORKDIR":     "COPY destinations are relative to the image root; write the full path",
	"SHELL":       "nothing runs at build time; install-time commands run under the target's shell",
	"ONBUILD":     "triggers are not supported; repeat the instructions in the derived Kubefile",
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checksumRE is the only pin form accepted: sha256 and 64 hex digits.
var checksumRE = regexp.MustCompile(`^sha256:[0-9a-fA-F]{64}$`)

// check runs the checks that need only the parsed file.
func check(f *File) Diagnostics {
	d := &diags{}
	for i := range f.Instructions {
		checkInstruction(&f.Instructions[i], d)
	}
	checkOrder(f, d)
	return d.list
}

func checkInstruction(in *Instruction, d *diags) {
	kw := in.Keyword
	if kw == KwRun {
		d.errorf(in.Pos, "RUN is not supported in %s: cnstack does not run containers at build time; put the command's result in the build context and COPY it, or run the command at install time with CMDS [\"command line\"] or APPCMDS <app> [\"command line\"]", quote(in.Original))
		return
	}
	if _, ok := forms[kw]; !ok {
		hint := unsupportedHints[kw]
		if hint != "" {
			hint = "; " + hint
		}
		d.errorf(in.Pos, "unknown instruction %s in %s (sealer and cnstack do not support it)%s; supported instructions: %s", in.Keyword, quote(in.Original), hint, supportedList)
		return
	}
	checkFlags(in, d)
	if in.bad {
		return
	}
	if len(in.Args) > 0 {
		checkKeywordCase(in, d)
	}
	n := len(in.Args)
	argPos := in.argPos
	switch kw {
	case KwFrom:
		switch {
		case n == 0:
			d.errorf(in.Pos, "FROM needs an image reference or scratch in %s; write FROM scratch or FROM registry/repo:tag", quote(in.Original))
		case n >= 2 && strings.EqualFold(in.Args[1], "AS"):
			d.errorf(argPos(1), "multi-stage builds are not supported, so FROM cannot name a stage in %s; write FROM %s", quote(in.Original), in.Args[0])
		case n >= 2:
			d.errorf(argPos(1), "FROM takes one image reference, got %d words in %s; write FROM %s", n, quote(in.Original), in.Args[0])
		}
	case KwCopy:
		switch {
		case n < 2:
			d.errorf(in.Pos, "COPY needs a source and a destination, got %d argument(s) in %s; write COPY <path in build context> <path in image>", n, quote(in.Original))
		case n > 2:
			d.errorf(argPos(1), "COPY takes exactly one source and one destination, got %d arguments in %s; write one COPY per source", n, quote(in.Original))
		}
	case KwAdd:
		switch {
		case n < 2:
			d.errorf(in.Pos, "ADD needs a source and a destination, got %d argument(s) in %s; write ADD <source> <path in image>", n, quote(in.Original))
		case n > 2 && !strings.HasSuffix(in.Args[n-1], "/"):
			d.errorf(argPos(n-1), "ADD with %d sources needs a directory destination ending in \"/\", got %s in %s; write %s/", n-1, quote(in.Args[n-1]), quote(in.Original), in.Args[n-1])
		}
	case KwApp, KwCNI, KwCSI:
		switch {
		case n == 0:
			d.errorf(in.Pos, "%s needs an app name and at least one source in %s; write %s <name> local://<path in build context>", kw, quote(in.Original), kw)
		case strings.Contains(in.Args[0], "://"):
			d.errorf(argPos(0), "%s needs an app name before its sources, got %s in %s; write %s <name> %s", kw, quote(in.Args[0]), quote(in.Original), kw, strings.Join(in.Args, " "))
		case n == 1:
			checkAppName(in, 0, d)
			d.errorf(in.Pos, "%s %s has no sources in %s; write %s %s local://<path in build context> (or https://…#sha256=<hex>)", kw, in.Args[0], quote(in.Original), kw, in.Args[0])
		default:
			checkAppName(in, 0, d)
		}
	case KwAppCmds:
		checkAppName(in, 0, d)
	case KwAppEnv:
		if n == 0 {
			d.errorf(in.Pos, "APPENV needs an app name and key=value pairs in %s; write APPENV <app> key=value", quote(in.Original))
			return
		}
		checkAppName(in, 0, d)
		if n == 1 {
			d.warnf(in.Pos, "APPENV %s sets nothing in %s; write APPENV %s key=value", in.Args[0], quote(in.Original), in.Args[0])
		}
		for i := 1; i < n; i++ {
			k, _, ok := strings.Cut(in.Args[i], "=")
			if !ok || k == "" {
				d.errorf(argPos(i), "APPENV entries must be key=value, got %s in %s (sealer silently drops it)", quote(in.Args[i]), quote(in.Original))
			}
		}
	case KwLaunch:
		if n == 0 {
			d.errorf(in.Pos, "LAUNCH needs at least one app name in %s; write LAUNCH [\"app\"]", quote(in.Original))
		}
		seen := map[string]bool{}
		for i, a := range in.Args {
			if seen[a] {
				d.warnf(argPos(i), "app %s is listed twice in %s, so it would be launched twice", quote(a), quote(in.Original))
			}
			seen[a] = true
		}
	case KwCmds:
		switch {
		case n == 0:
			d.errorf(in.Pos, "CMDS needs at least one command in %s; write CMDS [\"command line\"]", quote(in.Original))
		case !in.JSON && n > 1:
			d.warnf(in.Pos, "CMDS without a JSON array runs every word as a separate command: %s becomes %d commands; write CMDS [%s]", quote(in.Raw), n, jsonQuote(in.Raw))
		}
	case KwCmd:
		switch {
		case n == 0:
			d.errorf(in.Pos, "CMD needs a command in %s; write CMDS [\"command line\"]", quote(in.Original))
		case in.JSON:
			d.errorf(in.Pos, "CMD takes a shell command line, not a JSON array, in %s (sealer stores the brackets literally and the command fails at install time); write CMDS %s", quote(in.Original), in.Raw)
		default:
			d.warnf(in.Pos, "CMD is deprecated in sealer; write CMDS [%s]", jsonQuote(in.Raw))
		}
	case KwArg:
		if n == 0 {
			d.errorf(in.Pos, "ARG needs a name in %s; write ARG name or ARG name=default", quote(in.Original))
		}
		for i, w := range in.Args {
			name, _, _ := strings.Cut(w, "=")
			switch {
			case name == "":
				d.errorf(argPos(i), "ARG needs a name before '=', got %s in %s; write ARG name=default", quote(w), quote(in.Original))
			case !identRE.MatchString(name):
				d.warnf(argPos(i), "ARG name %s in %s cannot be referenced as $name; use letters, digits and '_', not starting with a digit", quote(name), quote(in.Original))
			}
		}
	case KwEnv, KwLabel:
		checkKeyValues(in, d)
	case KwMaintainer:
		if n == 0 {
			d.errorf(in.Pos, "MAINTAINER needs a name in %s; write MAINTAINER name <email>", quote(in.Original))
		}
	case KwKubeVersion:
		if n == 0 {
			d.errorf(in.Pos, "KUBEVERSION needs a version range in %s; write KUBEVERSION >=1.20.0", quote(in.Original))
		} else if _, err := semver.NewConstraint(in.Args[0]); err != nil {
			d.warnf(argPos(0), "KUBEVERSION %s is not a semver range (%v); write a range such as >=1.20.0 <1.30.0", quote(in.Args[0]), err)
		}
	}
}

func checkKeyValues(in *Instruction, d *diags) {
	kw := in.Keyword
	n := len(in.Args)
	if n == 0 {
		d.errorf(in.Pos, "%s needs key=value pairs in %s; write %s key=value", kw, quote(in.Original), kw)
		return
	}
	if in.Legacy {
		if n < 2 {
			d.errorf(in.Pos, "%s needs a value in %s; write %s %s=value", kw, quote(in.Original), kw, in.Args[0])
			return
		}
		if kw == KwEnv {
			d.warnf(in.Pos, "legacy form ENV key value in %s; write ENV %s=%s (sealer leaves the legacy form out of the image's env; cnstack includes it)", quote(in.Original), in.Args[0], shellQuote(in.Args[1]))
		}
		return
	}
	for i, w := range in.Args {
		k, _, ok := strings.Cut(w, "=")
		switch {
		case !ok:
			d.errorf(in.argPos(i), "%s pairs must be key=value, got %s in %s", kw, quote(w), quote(in.Original))
		case k == "":
			d.errorf(in.argPos(i), "%s key is empty in %s in %s", kw, quote(w), quote(in.Original))
		}
	}
}

// checkKeywordCase flags spellings that cnstack accepts but sealer v0.11 does not.
func checkKeywordCase(in *Instruction, d *diags) {
	switch in.Keyword {
	case KwEnv:
		if !strings.Contains(in.Original, "ENV ") {
			d.warnf(in.Pos, "sealer v0.11 needs the upper-case keyword followed by a space (\"ENV \") and fails with \"invalid ENV instruction\" on %s; write ENV", quote(in.Original))
		}
	case KwCmd:
		if !strings.HasPrefix(in.Original, "CMD ") {
			d.warnf(in.Pos, "sealer v0.11 needs the upper-case keyword followed by a space (\"CMD \") and crashes on %s; write CMD", quote(in.Original))
		} else if strings.Contains(in.Original[4:], "CMD ") {
			d.warnf(in.Pos, "sealer v0.11 cuts a CMD line at the next \"CMD \" in %s; write CMDS [%s]", quote(in.Original), jsonQuote(in.Raw))
		}
	case KwAppCmds:
		if len(in.Args) > 0 && !strings.HasPrefix(in.Original, "APPCMDS "+in.Args[0]+" ") && !strings.HasPrefix(in.Original, "APPCMDS "+in.Args[0]+"[") {
			d.warnf(in.Pos, "sealer v0.11 only understands APPCMDS written in upper case with single spaces (APPCMDS %s [...]) and rejects %s", in.Args[0], quote(in.Original))
		}
	}
}

var flagHelp = map[string]string{
	KwFrom: "FROM accepts only --platform=os/arch[/variant]",
	KwAdd:  "ADD accepts only --checksum=sha256:<64 hex digits>",
}

// flagsOK reports whether every flag is one the keyword accepts, given once;
// evaluation skips instructions whose flags were rejected.
func flagsOK(in *Instruction) bool {
	seen := map[string]bool{}
	for _, fl := range in.Flags {
		ok := (in.Keyword == KwFrom && fl.Name == "platform") || (in.Keyword == KwAdd && fl.Name == "checksum")
		if !ok || seen[fl.Name] {
			return false
		}
		seen[fl.Name] = true
	}
	return true
}

func checkFlags(in *Instruction, d *diags) {
	seen := map[string]bool{}
	for _, fl := range in.Flags {
		if seen[fl.Name] {
			d.errorf(fl.Pos, "flag --%s is given twice in %s; keep one", fl.Name, quote(in.Original))
			continue
		}
		seen[fl.Name] = true
		switch {
		case in.Keyword == KwFrom && fl.Name == "platform":
			switch {
			case fl.Value == "":
				d.errorf(fl.Pos, "--platform needs a value in %s; write FROM --platform=linux/amd64 <image>", quote(in.Original))
			case strings.Contains(fl.Value, "$"):
				// checked after expansion
			case strings.Contains(fl.Value, ","):
				d.errorf(fl.Pos, "FROM --platform takes one platform, got %s in %s; build each platform with the --platform build flag instead", quote(fl.Value), quote(in.Original))
			default:
				if _, err := oci.ParsePlatform(fl.Value); err != nil {
					d.errorf(fl.Pos, "%v in %s; write --platform=os/arch[/variant], e.g. linux/arm64", err, quote(in.Original))
				}
			}
		case in.Keyword == KwAdd && fl.Name == "checksum":
			if !strings.Contains(fl.Value, "$") && !checksumRE.MatchString(fl.Value) {
				d.errorf(fl.Pos, "--checksum must be sha256:<64 hex digits>, got %s in %s", quote(fl.Value), quote(in.Original))
			}
		case (in.Keyword == KwCopy || in.Keyword == KwAdd) && fl.Name == "from":
			d.errorf(fl.Pos, "%s --from is not supported in %s: multi-stage builds are not supported; copy from the build context", in.Keyword, quote(in.Original))
		case (in.Keyword == KwCopy || in.Keyword == KwAdd) && fl.Name == "chown":
			d.errorf(fl.Pos, "%s --chown is not supported in %s: every file in a cluster image is owned by root (uid 0, gid 0); sealer silently ignores it on COPY", in.Keyword, quote(in.Original))
		case (in.Keyword == KwCopy || in.Keyword == KwAdd) && fl.Name == "chmod":
			d.errorf(fl.Pos, "%s --chmod is not supported in %s (sealer silently ignores it on COPY); set the mode on the file in the build context", in.Keyword, quote(in.Original))
		default:
			help := flagHelp[in.Keyword]
			if help == "" {
				help = in.Keyword + " takes no flags"
			}
			d.errorf(fl.Pos, "flag --%s is not supported in %s; %s", fl.Name, quote(in.Original), help)
		}
	}
}

// checkAppName reports names that cannot be an application directory.
func checkAppName(in *Instruction, i int, d *diags) {
	if i >= len(in.Args) {
		return
	}
	name := in.Args[i]
	if msg := appNameProblem(name); msg != "" {
		d.errorf(in.argPos(i), "invalid app name %s in %s: %s", quote(name), quote(in.Original), msg)
	}
}

func appNameProblem(name string) string {
	switch {
	case name == "":
		return "it is empty"
	case name == "." || name == "..":
		return "it names a directory; use letters, digits, '.', '_' and '-'"
	case strings.ContainsAny(name, `/\`):
		return "it becomes the directory application/apps/<name>/, so it cannot contain a slash"
	case strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return "it cannot contain blanks or control characters"
	}
	return ""
}

// checkOrder enforces the file-level rules: FROM first and once, LAUNCH and
// CMDS last and once, CMD and LAUNCH exclusive.
func checkOrder(f *File, d *diags) {
	var from *Instruction
	var launch, cmds, cmd *Instruction
	ins := f.Instructions
	// lastNonFinal is the index of the last instruction other than LAUNCH/CMDS
	// (ignoring ones rejected outright, which already have an error).
	lastNonFinal := -1
	for i := range ins {
		if !countsForOrder(&ins[i]) {
			continue
		}
		if k := ins[i].Keyword; k != KwLaunch && k != KwCmds {
			lastNonFinal = i
		}
	}
	for i := range ins {
		in := &ins[i]
		if !countsForOrder(in) {
			continue
		}
		switch in.Keyword {
		case KwFrom:
			if from != nil {
				d.errorf(in.Pos, "only one FROM is allowed (the first is at line %d) in %s; multi-stage builds are not supported", from.Pos.Line, quote(in.Original))
				continue
			}
			from = in
			continue
		case KwArg:
		default:
			if from == nil {
				d.errorf(in.Pos, "%s comes before FROM in %s; only ARG may come before FROM", in.Keyword, quote(in.Original))
			}
		}
		switch in.Keyword {
		case KwLaunch, KwCmds:
			same, other := &launch, &cmds
			if in.Keyword == KwCmds {
				same, other = &cmds, &launch
			}
			switch {
			case *same != nil:
				d.errorf(in.Pos, "only one %s is allowed (the first is at line %d) in %s; list everything in one %s", in.Keyword, (*same).Pos.Line, quote(in.Original), in.Keyword)
			case *other != nil:
				d.errorf(in.Pos, "%s and %s cannot both be used (sealer requires each to be the last instruction) in %s; use LAUNCH for apps, or CMDS for commands", (*other).Keyword, in.Keyword, quote(in.Original))
			case lastNonFinal > i:
				d.errorf(in.Pos, "%s must be the last instruction, but line %d has %s after it, in %s; move it to the end", in.Keyword, ins[lastNonFinal].Pos.Line, ins[lastNonFinal].Keyword, quote(in.Original))
			}
			if *same == nil {
				*same = in
			}
			if in.Keyword == KwLaunch && cmd != nil {
				d.errorf(in.Pos, "CMD (line %d) and LAUNCH cannot be combined in %s; move the commands into APPCMDS of an app, or drop LAUNCH and use CMDS", cmd.Pos.Line, quote(in.Original))
			}
		case KwCmd:
			if launch != nil && cmd == nil {
				d.errorf(in.Pos, "CMD and LAUNCH (line %d) cannot be combined in %s; move the commands into APPCMDS of an app, or drop LAUNCH and use CMDS", launch.Pos.Line, quote(in.Original))
			}
			if cmd == nil {
				cmd = in
			}
		}
	}
	if from == nil {
		p := Pos{File: f.Name, Line: 1, Col: 1}
		if len(ins) > 0 {
			p = ins[0].Pos
		}
		d.errorf(p, "no FROM instruction; a Kubefile starts with FROM scratch or FROM <base image>")
	}
}

// countsForOrder is false for instructions already rejected as unsupported.
func countsForOrder(in *Instruction) bool {
	_, ok := forms[in.Keyword]
	return ok && in.Keyword != KwRun
}

// jsonQuote renders s as a JSON string for suggestions in messages.
func jsonQuote(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// shellQuote quotes s for a suggested ENV/LABEL value when it needs quoting.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"'$\\") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`).Replace(s) + `"`
}
