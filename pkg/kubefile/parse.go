package kubefile

import (
	"strings"
)

// Keywords of the dialect, upper case.
const (
	KwFrom        = "FROM"
	KwArg         = "ARG"
	KwCopy        = "COPY"
	KwAdd         = "ADD"
	KwLabel       = "LABEL"
	KwMaintainer  = "MAINTAINER"
	KwEnv         = "ENV"
	KwApp         = "APP"
	KwAppCmds     = "APPCMDS"
	KwAppEnv      = "APPENV"
	KwCNI         = "CNI"
	KwCSI         = "CSI"
	KwKubeVersion = "KUBEVERSION"
	KwLaunch      = "LAUNCH"
	KwCmds        = "CMDS"
	KwCmd         = "CMD"
	KwRun         = "RUN"
)

// Supported lists the instructions cnstack builds, in the order messages show them.
var Supported = []string{
	KwFrom, KwArg, KwCopy, KwAdd, KwLabel, KwMaintainer, KwEnv,
	KwApp, KwCNI, KwCSI, KwAppCmds, KwAppEnv, KwKubeVersion, KwLaunch, KwCmds, KwCmd,
}

var supportedList = strings.Join(Supported, ", ")

// argForm is how an instruction's arguments are split.
type argForm int

const (
	formBlank     argForm = iota // whitespace-separated words
	formMaybeJSON                // JSON string array, else whitespace words
	formNameVal                  // shell words: ARG, ENV
	formLabel                    // shell words k=v, or legacy "k v"
	formString                   // the raw rest of the line
	formAppCmds                  // <name> <JSON array>
	formCmd                      // raw shell text, no flag extraction
)

var forms = map[string]argForm{
	KwFrom:        formBlank,
	KwArg:         formNameVal,
	KwCopy:        formMaybeJSON,
	KwAdd:         formMaybeJSON,
	KwLabel:       formLabel,
	KwMaintainer:  formString,
	KwEnv:         formLabel,
	KwApp:         formMaybeJSON,
	KwAppCmds:     formAppCmds,
	KwAppEnv:      formMaybeJSON,
	KwCNI:         formMaybeJSON,
	KwCSI:         formMaybeJSON,
	KwKubeVersion: formString,
	KwLaunch:      formMaybeJSON,
	KwCmds:        formMaybeJSON,
	KwCmd:         formCmd,
	KwRun:         formMaybeJSON,
}

// Flag is a leading --name=value word of an instruction.
type Flag struct {
	Name  string // without the dashes
	Value string // quotes removed; "" when the flag had no '=value'
	Pos   Pos
}

// Instruction is one logical line of a Kubefile.
type Instruction struct {
	Pos     Pos // position of the keyword
	EndLine int // last physical line (continuations)
	Keyword string
	Flags   []Flag
	// Args are the parsed arguments. JSON form: the array's strings.
	// Whitespace form: the words. ARG: the shell words (quotes kept until
	// expansion). ENV/LABEL: the "k=v" shell words, or [key, value] when
	// Legacy. MAINTAINER/KUBEVERSION/CMD: one element, the raw text.
	// APPCMDS: the app name followed by the JSON array's strings.
	Args   []string
	ArgPos []Pos // position of each element of Args
	JSON   bool  // arguments were written as a JSON array
	Legacy bool  // ENV or LABEL written in the legacy "key value" form
	// Raw is the text after the keyword, flags included, continuations joined.
	Raw string
	// Original is the whole logical line as written (continuations joined),
	// for quoting in messages.
	Original string

	bad bool // arguments did not parse; checks skip it to avoid cascades
}

// File is a parsed Kubefile.
type File struct {
	Name         string
	Escape       rune
	Instructions []Instruction
}

// Parse lexes and parses a Kubefile and runs every check that needs neither
// a platform nor a build context: keyword set, argument shapes, flags, and
// the order rules (FROM first, LAUNCH/CMDS last, …). Parse always returns a
// File, even when it reports errors, so lint can go on.
func Parse(name string, src []byte) (*File, Diagnostics) {
	d := &diags{}
	lx := newLexer(name, src, d)
	f := &File{Name: name}
	i := 0
	for {
		ll := lx.next(&i)
		if ll == nil {
			break
		}
		f.Instructions = append(f.Instructions, parseInstruction(ll, lx.escape, d))
	}
	f.Escape = lx.escape
	d.list = append(d.list, check(f)...)
	return f, d.list.Sorted()
}

func parseInstruction(ll *logicalLine, escape rune, d *diags) Instruction {
	text := ll.text
	start := 0
	for start < len(text) && isBlank(text[start]) {
		start++
	}
	end := len(trimRightBlank(text))
	kwEnd := start
	for kwEnd < end && !isBlank(text[kwEnd]) {
		kwEnd++
	}
	restStart := kwEnd
	for restStart < end && isBlank(text[restStart]) {
		restStart++
	}
	in := Instruction{
		Pos:      ll.pos(start),
		EndLine:  ll.lastLine,
		Keyword:  strings.ToUpper(text[start:kwEnd]),
		Raw:      text[restStart:end],
		Original: text[start:end],
	}
	form, known := forms[in.Keyword]
	if !known {
		form = formBlank
	}
	argStart := restStart
	if form != formCmd {
		flags, off := extractFlags(in.Raw)
		for _, fl := range flags {
			name, value, _ := strings.Cut(fl.text, "=")
			in.Flags = append(in.Flags, Flag{Name: name, Value: value, Pos: ll.pos(restStart + fl.off)})
		}
		argStart = restStart + off
	}
	args := text[argStart:end]
	set := func(ws []word) {
		in.Args = make([]string, len(ws))
		in.ArgPos = make([]Pos, len(ws))
		for i, w := range ws {
			in.Args[i] = w.text
			in.ArgPos[i] = ll.pos(w.off)
		}
	}
	switch form {
	case formBlank:
		set(splitBlank(args, argStart))
	case formString, formCmd:
		if args != "" {
			set([]word{{text: args, off: argStart}})
		}
		if form == formCmd && strings.HasPrefix(args, "[") {
			if _, ok, _, _ := jsonArray(args, argStart); ok {
				in.JSON = true
			}
		}
	case formMaybeJSON:
		if strings.HasPrefix(args, "[") {
			ws, ok, trailing, err := jsonArray(args, argStart)
			switch {
			case err != nil:
				d.errorf(ll.pos(argStart), "%s in %s; write [\"a\", \"b\"]", err.Error(), quote(in.Original))
				in.bad = true
				in.JSON = true
				return in
			case ok && trailing >= 0:
				d.errorf(ll.pos(trailing), "unexpected text %s after the JSON array in %s; put every argument inside the brackets", quote(text[trailing:end]), quote(in.Original))
				in.bad = true
				in.JSON = true
				set(ws)
				return in
			case ok:
				in.JSON = true
				set(ws)
				return in
			}
			if in.Keyword == KwLaunch || in.Keyword == KwCmds {
				d.warnf(ll.pos(argStart), "%s is not a valid JSON array, so it is split on whitespace; JSON needs double quotes: %s [\"a\", \"b\"]", quote(args), in.Keyword)
			}
		}
		set(splitBlank(args, argStart))
	case formNameVal:
		set(shellWords(args, argStart, escape))
	case formLabel:
		ws := shellWords(args, argStart, escape)
		if len(ws) > 0 && !strings.Contains(ws[0].text, "=") {
			in.Legacy = true
			// Legacy form: the key is the first blank-delimited token and the
			// value is the rest of the line as written.
			k := splitBlank(args, argStart)[0]
			v := trimLeftBlank(args[k.off-argStart+len(k.text):])
			ws = []word{k}
			if v != "" {
				ws = append(ws, word{text: v, off: end - len(v)})
			}
		}
		set(ws)
	case formAppCmds:
		name := splitBlank(args, argStart)
		if len(name) == 0 || strings.HasPrefix(name[0].text, "[") {
			in.bad = true
			d.errorf(in.Pos, "APPCMDS needs an app name and a JSON array of commands in %s; write APPCMDS <app> [\"command line\"]", quote(in.Original))
			return in
		}
		n := name[0]
		ws := []word{n}
		restOff := n.off + len(n.text)
		rest := trimLeftBlank(text[restOff:end])
		restOff = end - len(rest)
		in.JSON = true
		bad := func() {
			in.bad = true
			what := "nothing"
			if rest != "" {
				what = quote(rest)
			}
			d.errorf(ll.pos(restOff), "APPCMDS commands must be a JSON array of strings, got %s in %s; write APPCMDS %s [\"command line\"]", what, quote(in.Original), n.text)
		}
		if !strings.HasPrefix(rest, "[") {
			bad()
			set(ws)
			return in
		}
		cmds, ok, trailing, err := jsonArray(rest, restOff)
		switch {
		case !ok || err != nil:
			bad()
		case trailing >= 0:
			in.bad = true
			d.errorf(ll.pos(trailing), "unexpected text %s after the JSON array in %s; put every command inside the brackets", quote(text[trailing:end]), quote(in.Original))
		}
		set(append(ws, cmds...))
	}
	return in
}
