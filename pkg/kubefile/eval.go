package kubefile

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/chartref"
	"github.com/cnstack/cnstack/pkg/helmcmd"
	"github.com/cnstack/cnstack/pkg/oci"
)

// Builtins lists the variables set from the target platform. ARCH is what
// sealer Kubefiles use (COPY ${ARCH}/bin bin); the TARGET* names are Docker's.
var Builtins = []string{"ARCH", "TARGETARCH", "TARGETOS", "TARGETVARIANT", "TARGETPLATFORM"}

func builtinVars(p ocispec.Platform) map[string]string {
	return map[string]string{
		"ARCH":           p.Architecture,
		"TARGETARCH":     p.Architecture,
		"TARGETOS":       p.OS,
		"TARGETVARIANT":  p.Variant,
		"TARGETPLATFORM": oci.PlatformString(p),
	}
}

type evaluator struct {
	f    *File
	opts EvalOptions
	d    *diags
	img  *Image

	builtins   map[string]string
	used       map[string]bool
	globalArgs map[string]*string
	args       map[string]*string
	env        map[string]string
	afterFrom  bool

	apps       map[string]*App
	appOrder   []string
	baseApps   map[string]bool
	declaredAt map[string]int // app name -> line of first declaration anywhere in the file
	checkApps  bool
	appCmds    map[string][]string
	appCmdsPos map[string]Pos
	appEnv     map[string]map[string]string
	appEnvPos  map[string]Pos
	appOrig    map[string]string // app name -> text of its latest declaration
	badAppCmds map[string]bool   // apps with a malformed APPCMDS (reported by Parse)
}

// Evaluate expands variables for one platform and validates what depends on
// the platform, the build args, the build context and the base image's apps.
// Its diagnostics include the file-level checks Parse runs (so Evaluate can
// be used alone on a parsed file) but not Parse's lexical errors: do not
// Evaluate a file whose Parse reported errors. The Image is returned even
// when there are errors (with the erroneous parts left out), for lint.
func Evaluate(f *File, opts EvalOptions) (*Image, Diagnostics) {
	if oci.IsZeroPlatform(opts.Platform) {
		opts.Platform = oci.DefaultPlatform
	}
	e := &evaluator{
		f:          f,
		opts:       opts,
		d:          &diags{},
		img:        &Image{Env: map[string]string{}, Labels: map[string]string{}, Platform: opts.Platform},
		builtins:   builtinVars(opts.Platform),
		used:       map[string]bool{},
		globalArgs: map[string]*string{},
		args:       map[string]*string{},
		env:        map[string]string{},
		apps:       map[string]*App{},
		baseApps:   map[string]bool{},
		declaredAt: map[string]int{},
		appCmds:    map[string][]string{},
		appCmdsPos: map[string]Pos{},
		appEnv:     map[string]map[string]string{},
		appEnvPos:  map[string]Pos{},
		appOrig:    map[string]string{},
		badAppCmds: map[string]bool{},
	}
	e.d.list = append(e.d.list, check(f)...)
	for _, a := range opts.BaseApps {
		e.baseApps[a] = true
	}
	for i := range f.Instructions {
		in := &f.Instructions[i]
		switch in.Keyword {
		case KwApp, KwCNI, KwCSI:
			if len(in.Args) > 0 {
				if _, ok := e.declaredAt[in.Args[0]]; !ok {
					e.declaredAt[in.Args[0]] = in.Pos.Line
				}
			}
		case KwAppCmds:
			if in.bad && len(in.Args) > 0 {
				// Reported by Parse; do not also say the app lacks APPCMDS.
				e.badAppCmds[in.Args[0]] = true
			}
		}
	}
	sawFrom := false
	for i := range f.Instructions {
		in := &f.Instructions[i]
		if in.Keyword == KwFrom {
			if !sawFrom && !in.bad && flagsOK(in) {
				e.from(in)
			}
			sawFrom, e.afterFrom = true, true
			continue
		}
		if in.bad || !countsForOrder(in) || !flagsOK(in) {
			continue
		}
		if !sawFrom && in.Keyword != KwArg {
			continue // reported by check
		}
		e.instruction(in)
	}
	e.finish()
	return e.img, e.d.list.Sorted()
}

// lookup resolves a variable in the current scope: ENV, then the platform
// built-ins, then ARG (Docker's precedence, with built-ins fixed by the platform).
func (e *evaluator) lookup(name string) (string, bool) {
	if e.afterFrom {
		if v, ok := e.env[name]; ok {
			return v, true
		}
	}
	if v, ok := e.builtins[name]; ok {
		return v, true
	}
	scope := e.globalArgs
	if e.afterFrom {
		scope = e.args
	}
	if v := scope[name]; v != nil {
		return *v, true
	}
	return "", false
}

// expand processes one word at p, reporting errors and undefined variables.
func (e *evaluator) expand(in *Instruction, p Pos, s string) (string, bool) {
	x := &expander{escape: e.f.escapeRune(), lookup: e.lookup}
	v, err := x.word(s)
	if err != nil {
		e.d.errorf(p, "cannot expand %s in %s: %v", quote(s), quote(in.Original), err)
		return "", false
	}
	e.undefined(in, p, x.undefined)
	return v, true
}

func (e *evaluator) undefined(in *Instruction, p Pos, names []string) {
	seen := map[string]bool{}
	scope := e.globalArgs
	if e.afterFrom {
		scope = e.args
	}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		if _, declared := scope[n]; declared {
			e.d.warnf(p, "ARG %s has no default and no --build-arg was given, so it expands to \"\" in %s; give it a default (ARG %s=value) or pass --build-arg %s=value", n, quote(in.Original), n, n)
			continue
		}
		e.d.warnf(p, "variable %s is not defined, so it expands to \"\" in %s; declare ARG %s (or ENV %s=…), or write ${%s:-default}", n, quote(in.Original), n, n, n)
	}
}

func (f *File) escapeRune() rune {
	if f.Escape == 0 {
		return DefaultEscape
	}
	return f.Escape
}

func (in *Instruction) argPos(i int) Pos {
	if i < len(in.ArgPos) {
		return in.ArgPos[i]
	}
	return in.Pos
}

func (in *Instruction) flag(name string) *Flag {
	for i := range in.Flags {
		if in.Flags[i].Name == name {
			return &in.Flags[i]
		}
	}
	return nil
}

func (e *evaluator) from(in *Instruction) {
	e.img.From.Pos = in.Pos
	if len(in.Args) == 0 {
		return
	}
	if fl := in.flag("platform"); fl != nil && fl.Value != "" {
		v, ok := e.expand(in, fl.Pos, fl.Value)
		if ok {
			p, err := oci.ParsePlatform(v)
			if err != nil {
				if strings.Contains(fl.Value, "$") {
					e.d.errorf(fl.Pos, "--platform=%s expands to %s: %v; write --platform=os/arch[/variant]", fl.Value, quote(v), err)
				}
			} else {
				e.img.From.Platform = &p
			}
		}
	}
	ref, ok := e.expand(in, in.argPos(0), in.Args[0])
	e.afterFrom = true
	if !ok {
		return
	}
	switch {
	case ref == "":
		e.d.errorf(in.argPos(0), "FROM %s expands to an empty image reference in %s; give the ARG a default or pass --build-arg", in.Args[0], quote(in.Original))
		return
	case ref == "scratch":
		e.checkApps = true
	default:
		if _, err := name.ParseReference(ref); err != nil {
			e.d.errorf(in.argPos(0), "FROM %s is not a valid image reference in %s: %v; write FROM registry/repository:tag or FROM scratch", quote(ref), quote(in.Original), err)
			return
		}
		e.checkApps = e.opts.BaseApps != nil
	}
	e.img.From.Ref = ref
}

func (e *evaluator) addStep(s Step) {
	if len(s.Pairs) > 0 && s.Key == "" && s.Value == "" {
		s.Key, s.Value = s.Pairs[0].Key, s.Pairs[0].Value
	}
	e.img.Steps = append(e.img.Steps, s)
}

func (e *evaluator) instruction(in *Instruction) {
	step := Step{Instr: in, Pos: in.Pos}
	switch in.Keyword {
	case KwArg:
		e.arg(in, step)
	case KwEnv:
		e.envInstr(in, step)
	case KwLabel:
		pairs, ok := e.keyValues(in)
		if !ok {
			return
		}
		for _, kv := range pairs {
			e.img.Labels[kv.Key] = kv.Value
		}
		step.Kind, step.Pairs = StepLabel, pairs
		step.Text = pairsText(KwLabel, pairs)
		e.addStep(step)
	case KwMaintainer:
		if len(in.Args) == 0 {
			return
		}
		e.img.Author = in.Args[0]
		step.Kind, step.Value = StepMaintainer, in.Args[0]
		step.Text = KwMaintainer + " " + in.Args[0]
		e.addStep(step)
	case KwKubeVersion:
		if len(in.Args) == 0 {
			return
		}
		e.img.Labels[LabelSupportedKubeVersion] = in.Args[0]
		step.Kind = StepLabel
		step.Pairs = []KeyValue{{Key: LabelSupportedKubeVersion, Value: in.Args[0]}}
		step.Text = pairsText(KwLabel, step.Pairs)
		e.addStep(step)
	case KwCopy:
		e.copyInstr(in, step)
	case KwAdd:
		e.addInstr(in, step)
	case KwApp, KwCNI, KwCSI:
		e.app(in, step)
	case KwAppCmds:
		e.appCmdsInstr(in, step)
	case KwAppEnv:
		e.appEnvInstr(in, step)
	case KwLaunch:
		e.launch(in, step)
	case KwCmds, KwCmd:
		e.cmds(in, step)
	}
}

func (e *evaluator) arg(in *Instruction, step Step) {
	var pairs []KeyValue
	for i, w := range in.Args {
		name, def, hasDef := strings.Cut(w, "=")
		p := in.argPos(i)
		if name == "" {
			continue // reported by check
		}
		if b, ok := e.builtins[name]; ok {
			if hasDef {
				e.d.warnf(p, "%s is set from the target platform (%s here), so the default %s is ignored in %s; drop the default", name, quote(b), quote(def), quote(in.Original))
			}
			if _, ok := e.opts.BuildArgs[name]; ok {
				e.d.warnf(p, "--build-arg %s is ignored: %s is set from the target platform; use --platform", name, name)
			}
			pairs = append(pairs, KeyValue{Key: name, Value: b})
			continue
		}
		var val *string
		if b, ok := e.opts.BuildArgs[name]; ok {
			e.used[name] = true
			val = &b
		} else if hasDef {
			v, ok := e.expand(in, p, def)
			if !ok {
				continue
			}
			val = &v
		} else if e.afterFrom && e.globalArgs[name] != nil {
			v := *e.globalArgs[name]
			val = &v
		}
		if e.afterFrom {
			e.args[name] = val
		} else {
			e.globalArgs[name] = val
		}
		kv := KeyValue{Key: name, Unset: val == nil}
		if val != nil {
			kv.Value = *val
		}
		pairs = append(pairs, kv)
	}
	if !e.afterFrom || len(pairs) == 0 {
		return
	}
	step.Kind, step.Pairs = StepArg, pairs
	var parts []string
	for _, kv := range pairs {
		if kv.Unset {
			parts = append(parts, kv.Key)
		} else {
			parts = append(parts, kv.Key+"="+shellQuote(kv.Value))
		}
	}
	step.Text = KwArg + " " + strings.Join(parts, " ")
	e.addStep(step)
}

// keyValues expands the pairs of ENV or LABEL. Every value is expanded with
// the variables as they were before the instruction, as Docker does.
func (e *evaluator) keyValues(in *Instruction) ([]KeyValue, bool) {
	if len(in.Args) == 0 {
		return nil, false
	}
	var pairs []KeyValue
	okAll := true
	add := func(p Pos, k, v string) {
		if k == "" {
			okAll = false // reported by check
			return
		}
		key, ok1 := e.expand(in, p, k)
		val, ok2 := e.expand(in, p, v)
		if !ok1 || !ok2 {
			okAll = false
			return
		}
		if key == "" {
			e.d.errorf(p, "%s key %s expands to \"\" in %s", in.Keyword, quote(k), quote(in.Original))
			okAll = false
			return
		}
		pairs = append(pairs, KeyValue{Key: key, Value: val})
	}
	if in.Legacy {
		if len(in.Args) < 2 {
			return nil, false
		}
		add(in.argPos(0), in.Args[0], in.Args[1])
	} else {
		for i, w := range in.Args {
			k, v, ok := strings.Cut(w, "=")
			if !ok {
				okAll = false
				continue
			}
			add(in.argPos(i), k, v)
		}
	}
	return pairs, okAll && len(pairs) > 0
}

func (e *evaluator) envInstr(in *Instruction, step Step) {
	pairs, ok := e.keyValues(in)
	if !ok {
		return
	}
	for _, kv := range pairs {
		if _, ok := e.builtins[kv.Key]; ok {
			e.d.warnf(in.Pos, "ENV %s shadows the built-in variable set from the target platform in %s; pick another name", kv.Key, quote(in.Original))
		}
		e.env[kv.Key] = kv.Value
		e.img.Env[kv.Key] = kv.Value
	}
	step.Kind, step.Pairs = StepEnv, pairs
	step.Text = pairsText(KwEnv, pairs)
	e.addStep(step)
}

func pairsText(kw string, pairs []KeyValue) string {
	parts := []string{kw}
	for _, kv := range pairs {
		parts = append(parts, shellQuote(kv.Key)+"="+shellQuote(kv.Value))
	}
	return strings.Join(parts, " ")
}

// contextPath cleans a build-context path; ok is false when it leaves the context.
func contextPath(p string) (string, bool) {
	c := path.Clean(strings.TrimLeft(p, "/"))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	return c, true
}

// imagePath cleans a destination inside the image, keeping a trailing "/".
func imagePath(p string) string {
	c := strings.TrimPrefix(path.Clean("/"+p), "/")
	if c == "" {
		return "."
	}
	if strings.HasSuffix(p, "/") {
		c += "/"
	}
	return c
}

func hasGlob(p string) bool { return strings.ContainsAny(p, "*?[") }

func isRemote(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// localSource validates a COPY/ADD source path and checks it exists.
func (e *evaluator) localSource(in *Instruction, p Pos, written, expanded string) (Source, bool) {
	c, ok := contextPath(expanded)
	if !ok {
		e.d.errorf(p, "%s source %s leaves the build context in %s; sources must be paths inside the context directory", in.Keyword, quote(expanded), quote(in.Original))
		return Source{}, false
	}
	src := Source{Path: c, Glob: hasGlob(c), Pos: p}
	if e.opts.Context == nil {
		return src, true
	}
	if src.Glob {
		matches, err := fs.Glob(e.opts.Context, c)
		switch {
		case err != nil:
			e.d.errorf(p, "%s source pattern %s is malformed in %s: %v", in.Keyword, quote(c), quote(in.Original), err)
			return Source{}, false
		case len(matches) == 0:
			e.d.errorf(p, "%s source pattern %s matches nothing in the build context in %s", in.Keyword, quote(c), quote(in.Original))
			return Source{}, false
		}
		return src, true
	}
	if _, err := fs.Stat(e.opts.Context, c); err != nil {
		e.statError(in, p, written, c, err)
		return Source{}, false
	}
	return src, true
}

func (e *evaluator) statError(in *Instruction, p Pos, written, c string, err error) {
	from := ""
	if written != c && written != "local://"+c {
		from = " (from " + quote(written) + ")"
	}
	if errors.Is(err, fs.ErrNotExist) {
		e.d.errorf(p, "%s source %s%s does not exist in the build context in %s", in.Keyword, quote(c), from, quote(in.Original))
		return
	}
	e.d.errorf(p, "cannot read %s source %s%s in %s: %v", in.Keyword, quote(c), from, quote(in.Original), err)
}

func (e *evaluator) dest(in *Instruction, i int) (string, bool) {
	v, ok := e.expand(in, in.argPos(i), in.Args[i])
	if !ok {
		return "", false
	}
	if v == "" {
		e.d.errorf(in.argPos(i), "%s destination %s is empty in %s; write . for the image root", in.Keyword, quote(in.Args[i]), quote(in.Original))
		return "", false
	}
	return imagePath(v), true
}

func (e *evaluator) copyInstr(in *Instruction, step Step) {
	if len(in.Args) != 2 {
		return // reported by check
	}
	raw, ok := e.expand(in, in.argPos(0), in.Args[0])
	if !ok {
		return
	}
	p := in.argPos(0)
	switch {
	case raw == "":
		e.d.errorf(p, "COPY source %s is empty in %s", quote(in.Args[0]), quote(in.Original))
		return
	case isRemote(raw):
		e.d.errorf(p, "COPY cannot download %s in %s; write ADD --checksum=sha256:<64 hex digits> %s %s", quote(raw), quote(in.Original), raw, in.Args[1])
		return
	case strings.HasPrefix(raw, "local://"):
		e.d.errorf(p, "COPY takes a plain path in the build context, not %s, in %s; write COPY %s %s (local:// is for APP, CNI and CSI)", quote(raw), quote(in.Original), strings.TrimPrefix(raw, "local://"), in.Args[1])
		return
	}
	src, ok := e.localSource(in, p, in.Args[0], raw)
	dest, ok2 := e.dest(in, 1)
	if !ok || !ok2 {
		return
	}
	step.Kind, step.Sources, step.Dest = StepCopy, []Source{src}, dest
	step.Text = KwCopy + " " + shellQuote(src.Path) + " " + shellQuote(dest)
	e.addStep(step)
}

func (e *evaluator) addInstr(in *Instruction, step Step) {
	n := len(in.Args)
	if n < 2 {
		return
	}
	checksum := ""
	fl := in.flag("checksum")
	if fl != nil {
		v, ok := e.expand(in, fl.Pos, fl.Value)
		if !ok {
			return
		}
		if !checksumRE.MatchString(v) {
			if strings.Contains(fl.Value, "$") {
				e.d.errorf(fl.Pos, "--checksum=%s expands to %s, which is not sha256:<64 hex digits>, in %s", fl.Value, quote(v), quote(in.Original))
			}
			return
		}
		checksum = strings.ToLower(v)
	}
	okAll := true
	var sources []Source
	for i := 0; i < n-1; i++ {
		p := in.argPos(i)
		raw, ok := e.expand(in, p, in.Args[i])
		if !ok {
			okAll = false
			continue
		}
		switch {
		case raw == "":
			e.d.errorf(p, "ADD source %s is empty in %s", quote(in.Args[i]), quote(in.Original))
			okAll = false
		case isRemote(raw):
			u, err := url.Parse(raw)
			if err != nil || u.Host == "" {
				e.d.errorf(p, "ADD source %s is not a valid URL in %s", quote(raw), quote(in.Original))
				okAll = false
				continue
			}
			switch {
			case checksum == "" && fl == nil:
				e.d.errorf(p, "ADD of a remote URL must pin its content in %s; write ADD --checksum=sha256:<64 hex digits> %s %s", quote(in.Original), raw, in.Args[n-1])
				okAll = false
			case n > 2:
				e.d.errorf(p, "ADD --checksum pins exactly one URL, but %s has %d sources; write one ADD per URL", quote(in.Original), n-1)
				okAll = false
			}
			sources = append(sources, Source{URL: raw, Checksum: checksum, Pos: p})
		case strings.Contains(raw, "://"):
			e.d.errorf(p, "ADD source %s has an unsupported scheme in %s; ADD takes a path in the build context or an http(s):// URL", quote(raw), quote(in.Original))
			okAll = false
		default:
			if fl != nil {
				e.d.errorf(fl.Pos, "--checksum only applies to a URL source, but %s is a local path, in %s; drop --checksum", quote(raw), quote(in.Original))
				okAll = false
			}
			src, ok := e.localSource(in, p, in.Args[i], raw)
			if !ok {
				okAll = false
				continue
			}
			sources = append(sources, src)
		}
	}
	dest, ok := e.dest(in, n-1)
	if !ok || !okAll {
		return
	}
	step.Kind, step.Sources, step.Dest, step.Unpack = StepCopy, sources, dest, true
	parts := []string{KwAdd}
	if checksum != "" {
		parts = append(parts, "--checksum="+checksum)
	}
	for _, s := range sources {
		if s.IsRemote() {
			parts = append(parts, shellQuote(s.URL))
		} else {
			parts = append(parts, shellQuote(s.Path))
		}
	}
	step.Text = strings.Join(append(parts, shellQuote(dest)), " ")
	e.addStep(step)
}

// appSource is an APP/CNI/CSI source during evaluation.
type appSource struct {
	Source
	written  string // the local path as written after local:// (trailing "/" matters to sealer)
	fileName string // remote: the URL's file name
}

func (e *evaluator) app(in *Instruction, step Step) {
	if len(in.Args) < 2 || appNameProblem(in.Args[0]) != "" || strings.Contains(in.Args[0], "://") {
		return
	}
	name := in.Args[0]
	var srcs []appSource
	okAll := true
	for i := 1; i < len(in.Args); i++ {
		s, ok := e.appSource(in, i)
		if !ok {
			okAll = false
			continue
		}
		srcs = append(srcs, s)
	}
	if !okAll {
		return
	}
	// Sealer copies (and lists) the local sources first, then the downloaded ones.
	slices.SortStableFunc(srcs, func(a, b appSource) int {
		switch {
		case !a.IsRemote() && b.IsRemote():
			return -1
		case a.IsRemote() && !b.IsRemote():
			return 1
		}
		return 0
	})
	app := &App{Name: name, Kind: in.Keyword, Pos: in.Pos}
	for _, s := range srcs {
		app.Sources = append(app.Sources, s.Source)
	}
	if e.opts.Context != nil || allRemote(srcs) {
		typ, files, err := detectAppType(e.opts.Context, name, srcs)
		if err != nil {
			e.d.errorf(in.Pos, "cannot detect the type of app %s in %s: %v", name, quote(in.Original), err)
			return
		}
		app.Type, app.Files, app.TypeKnown = typ, files, true
		if w := templatesWarning(e.opts.Context, srcs); w != "" {
			e.d.warnf(in.Pos, "%s in %s", w, quote(in.Original))
		}
	}
	e.appOrig[name] = in.Original
	if prev, ok := e.apps[name]; ok {
		e.d.warnf(in.Pos, "%s %s replaces the app of the same name declared at line %d in %s", in.Keyword, name, prev.Pos.Line, quote(in.Original))
		*prev = *app
	} else {
		if e.baseApps[name] {
			e.d.warnf(in.Pos, "%s %s replaces the app %s inherited from the base image in %s", in.Keyword, name, name, quote(in.Original))
		}
		e.apps[name] = app
		e.appOrder = append(e.appOrder, name)
	}
	step.Kind, step.App, step.Sources, step.Dest = StepCopy, name, app.Sources, AppDir(name)
	parts := []string{in.Keyword, name}
	for _, s := range srcs {
		switch {
		case s.Chart != nil:
			parts = append(parts, shellQuote(s.URL))
		case s.IsRemote():
			parts = append(parts, shellQuote(s.URL+"#"+strings.Replace(s.Checksum, ":", "=", 1)))
		default:
			parts = append(parts, shellQuote("local://"+s.Path))
		}
	}
	step.Text = strings.Join(parts, " ")
	e.addStep(step)
	if in.Keyword == KwCNI || in.Keyword == KwCSI {
		prefix := LabelKubeCNIPrefix
		if in.Keyword == KwCSI {
			prefix = LabelKubeCSIPrefix
		}
		kv := KeyValue{Key: prefix + name, Value: "true"}
		e.img.Labels[kv.Key] = kv.Value
		e.addStep(Step{Kind: StepLabel, Instr: in, Pos: in.Pos, App: name, Pairs: []KeyValue{kv}, Text: pairsText(KwLabel, []KeyValue{kv})})
	}
}

func allRemote(srcs []appSource) bool {
	for _, s := range srcs {
		if !s.IsRemote() {
			return false
		}
	}
	return true
}

var pinRE = checksumRE

func (e *evaluator) appSource(in *Instruction, i int) (appSource, bool) {
	p := in.argPos(i)
	raw, ok := e.expand(in, p, in.Args[i])
	if !ok {
		return appSource{}, false
	}
	kw := in.Keyword
	switch {
	case strings.HasPrefix(raw, "local://"):
		rel := strings.TrimPrefix(raw, "local://")
		if rel == "" {
			e.d.errorf(p, "%s source %s names no path in %s; write local://<path in build context>", kw, quote(raw), quote(in.Original))
			return appSource{}, false
		}
		if strings.HasPrefix(rel, "/") {
			e.d.errorf(p, "%s source %s is an absolute path in %s; write a path relative to the build context, local://%s", kw, quote(raw), quote(in.Original), strings.TrimLeft(rel, "/"))
			return appSource{}, false
		}
		c, ok := contextPath(rel)
		if !ok {
			e.d.errorf(p, "%s source %s leaves the build context in %s; sources must be paths inside the context directory", kw, quote(raw), quote(in.Original))
			return appSource{}, false
		}
		if e.opts.Context != nil {
			if _, err := fs.Stat(e.opts.Context, c); err != nil {
				e.statError(in, p, raw, c, err)
				return appSource{}, false
			}
		}
		return appSource{Source: Source{Path: c, Pos: p}, written: rel}, true
	case chartref.IsChart(raw):
		ref, err := chartref.Parse(raw)
		if err != nil {
			e.d.errorf(p, "%s source %v, in %s", kw, err, quote(in.Original))
			return appSource{}, false
		}
		return appSource{Source: Source{URL: ref.String(), Chart: &ref, Pos: p}, fileName: ref.FileName()}, true
	case isRemote(raw):
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			e.d.errorf(p, "%s source %s is not a valid URL in %s", kw, quote(raw), quote(in.Original))
			return appSource{}, false
		}
		pin := ""
		if frag, ok := strings.CutPrefix(u.Fragment, "sha256="); ok && pinRE.MatchString("sha256:"+frag) {
			pin = "sha256:" + strings.ToLower(frag)
		}
		if pin == "" {
			bare := *u
			bare.Fragment = ""
			e.d.errorf(p, "remote %s source %s must pin its content in %s; append the file's SHA-256: %s#sha256=<64 hex digits>", kw, quote(raw), quote(in.Original), bare.String())
			return appSource{}, false
		}
		base := path.Base(u.Path)
		if base == "/" || base == "." || base == "" {
			e.d.errorf(p, "remote %s source %s has no file name in its path in %s; the app's file is named after the URL's last path element", kw, quote(raw), quote(in.Original))
			return appSource{}, false
		}
		u.Fragment = ""
		u.RawFragment = ""
		return appSource{Source: Source{URL: u.String(), Checksum: pin, Pos: p}, fileName: base}, true
	case strings.Contains(raw, "://"):
		scheme, _, _ := strings.Cut(raw, "://")
		e.d.errorf(p, "%s source %s has the unknown scheme %s:// in %s; sources start with local://, http:// or https:// (or, for a Helm chart, helm+https:// or oci://)", kw, quote(raw), scheme, quote(in.Original))
	default:
		e.d.errorf(p, "%s source %s has no scheme in %s; write local://%s for a path in the build context (or an http(s):// URL with #sha256=<hex>)", kw, quote(raw), quote(in.Original), raw)
	}
	return appSource{}, false
}

// knownApp reports whether an app name can be referenced at this point, and
// reports an error when it cannot.
func (e *evaluator) knownApp(in *Instruction, p Pos, name string) bool {
	if _, ok := e.apps[name]; ok || e.baseApps[name] {
		return true
	}
	if !e.checkApps {
		return true // base image apps unknown
	}
	line, declared := e.declaredAt[name]
	if declared && line < in.Pos.Line {
		return false // its declaration failed and was reported
	}
	if declared {
		e.d.errorf(p, "app %s is used in %s before it is declared (line %d); move the %s after the APP/CNI/CSI that declares it", quote(name), quote(in.Original), line, in.Keyword)
		return false
	}
	known := e.knownNames()
	list := "none are declared"
	if len(known) > 0 {
		list = "known apps: " + strings.Join(known, ", ")
	}
	e.d.errorf(p, "unknown app %s in %s; declare it with APP %s local://<path> first (%s)", quote(name), quote(in.Original), name, list)
	return false
}

func (e *evaluator) knownNames() []string {
	var names []string
	for n := range e.apps {
		names = append(names, n)
	}
	for n := range e.baseApps {
		if _, ok := e.apps[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

func (e *evaluator) appCmdsInstr(in *Instruction, step Step) {
	if len(in.Args) == 0 {
		return
	}
	name := in.Args[0]
	if !e.knownApp(in, in.argPos(0), name) {
		return
	}
	cmds := append([]string{}, in.Args[1:]...)
	if prev, ok := e.appCmdsPos[name]; ok {
		e.d.warnf(in.Pos, "APPCMDS for %s replaces the one at line %d in %s; the last one wins", name, prev.Line, quote(in.Original))
	}
	e.appCmds[name] = cmds
	e.appCmdsPos[name] = in.Pos
	step.Kind, step.App = StepMeta, name
	step.Text = KwAppCmds + " " + name + " " + jsonList(cmds)
	e.addStep(step)
}

func (e *evaluator) appEnvInstr(in *Instruction, step Step) {
	if len(in.Args) == 0 {
		return
	}
	name := in.Args[0]
	if !e.knownApp(in, in.argPos(0), name) {
		return
	}
	var pairs []KeyValue
	for i := 1; i < len(in.Args); i++ {
		k, v, ok := strings.Cut(in.Args[i], "=")
		if !ok || k == "" {
			return // reported by check
		}
		val, ok := e.expand(in, in.argPos(i), v)
		if !ok {
			return
		}
		pairs = append(pairs, KeyValue{Key: k, Value: val})
	}
	env := e.appEnv[name]
	if env == nil {
		env = map[string]string{}
		e.appEnv[name] = env
		e.appEnvPos[name] = in.Pos
	}
	for _, kv := range pairs {
		env[kv.Key] = kv.Value
	}
	step.Kind, step.App, step.Pairs = StepMeta, name, pairs
	step.Text = strings.Replace(pairsText(KwAppEnv, pairs), KwAppEnv, KwAppEnv+" "+name, 1)
	e.addStep(step)
}

func (e *evaluator) launch(in *Instruction, step Step) {
	var names []string
	for i, n := range in.Args {
		if e.knownApp(in, in.argPos(i), n) {
			names = append(names, n)
		}
	}
	if e.img.Launch == nil {
		e.img.Launch = &Launch{Pos: in.Pos}
	}
	e.img.Launch.AppNames = append(e.img.Launch.AppNames, names...)
	step.Kind = StepMeta
	step.Text = KwLaunch + " " + jsonList(in.Args)
	e.addStep(step)
}

func (e *evaluator) cmds(in *Instruction, step Step) {
	if len(in.Args) == 0 || (in.Keyword == KwCmd && in.JSON) {
		return
	}
	if e.img.Launch == nil {
		e.img.Launch = &Launch{Pos: in.Pos}
	}
	e.img.Launch.Cmds = append(e.img.Launch.Cmds, in.Args...)
	step.Kind = StepMeta
	if in.Keyword == KwCmd {
		step.Text = KwCmd + " " + in.Args[0]
	} else {
		step.Text = KwCmds + " " + jsonList(in.Args)
	}
	e.addStep(step)
}

func jsonList(s []string) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = jsonQuote(v)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// finish attaches APPCMDS/APPENV to apps and applies the end-of-file rules.
func (e *evaluator) finish() {
	for _, n := range e.appOrder {
		app := e.apps[n]
		if cmds, ok := e.appCmds[n]; ok {
			app.Cmds = cmds
		}
		if env, ok := e.appEnv[n]; ok {
			app.Env = env
		}
		if app.TypeKnown && app.Type == AppTypeUnknown {
			cmds, ok := e.appCmds[n]
			switch {
			case !ok && !e.badAppCmds[n]:
				e.d.errorf(app.Pos, "app %s has no detectable type in %s (helm needs Chart.yaml, values.yaml and templates/; kube needs only .yaml/.yml files; shell needs only .sh files), so it needs APPCMDS %s [\"command line\"] to say how to install it", n, quote(e.appOrig[n]), n)
			case ok && len(cmds) == 0:
				e.d.errorf(e.appCmdsPos[n], "APPCMDS %s is empty, and app %s has no detectable type; give the command that installs it", n, n)
			}
		}
		e.checkChartApp(app)
		e.img.Apps = append(e.img.Apps, *app)
	}
	// Updates to inherited apps, sorted by name.
	var inherited []string
	for n := range e.appCmds {
		if _, ok := e.apps[n]; !ok {
			inherited = append(inherited, n)
		}
	}
	for n := range e.appEnv {
		if _, ok := e.apps[n]; !ok && !slices.Contains(inherited, n) {
			inherited = append(inherited, n)
		}
	}
	sort.Strings(inherited)
	for _, n := range inherited {
		u := AppUpdate{Name: n}
		if cmds, ok := e.appCmds[n]; ok {
			u.Cmds, u.CmdsSet, u.Pos = cmds, true, e.appCmdsPos[n]
		}
		if env, ok := e.appEnv[n]; ok {
			u.Env = env
			if !u.Pos.IsValid() {
				u.Pos = e.appEnvPos[n]
			}
		}
		e.img.AppUpdates = append(e.img.AppUpdates, u)
	}
	for k := range e.used {
		e.img.UsedArgs = append(e.img.UsedArgs, k)
	}
	sort.Strings(e.img.UsedArgs)
}

// checkChartApp checks an app that carries Helm charts (chart sources, a
// cnstack extension): sealer cannot detect its type, so APPCMDS must
// install each chart with helm, and every values file the command reads
// must be one of the app's files. Image discovery renders the chart with
// that command's values (pkg/helmcmd).
func (e *evaluator) checkChartApp(app *App) {
	var charts []string
	for _, s := range app.Sources {
		if s.IsChart() {
			charts = append(charts, s.Chart.FileName())
		}
	}
	if len(charts) == 0 {
		return
	}
	if dup := firstDuplicate(charts); dup != "" {
		e.d.errorf(app.Pos, "app %s has two charts named %s in %s; each chart lands in the app directory as <chart>.tgz, so put them in separate apps", app.Name, dup, quote(e.appOrig[app.Name]))
		return
	}
	cmds, ok := e.appCmds[app.Name]
	example := fmt.Sprintf("APPCMDS %s [\"helm upgrade --install %s %s --namespace <namespace> --create-namespace -f <values file>\"]", app.Name, app.Name, charts[0])
	if !ok {
		if !app.TypeKnown && !e.badAppCmds[app.Name] {
			e.d.errorf(app.Pos, "app %s carries the Helm chart %s, so it needs APPCMDS to install it: %s", app.Name, charts[0], example)
		}
		return
	}
	if len(cmds) == 0 {
		return // reported as empty APPCMDS
	}
	installs, err := helmcmd.Parse(strings.Join(cmds, " "))
	if err != nil {
		e.d.errorf(e.appCmdsPos[app.Name], "APPCMDS %s: cannot read its helm command: %v", app.Name, err)
		return
	}
	for _, c := range charts {
		var in *helmcmd.Install
		for i := range installs {
			if installs[i].ChartPath() == c {
				in = &installs[i]
				break
			}
		}
		if in == nil {
			e.d.errorf(e.appCmdsPos[app.Name], "app %s carries the chart %s, but its APPCMDS install no chart of that name (image discovery renders a chart with the values of the helm command that installs it); write %s", app.Name, c, example)
			continue
		}
		if e.opts.Context == nil {
			continue
		}
		for _, f := range in.Files() {
			if !e.appHasFile(app, f) {
				e.d.errorf(e.appCmdsPos[app.Name], "APPCMDS %s reads %s, which is not one of the app's files; add it to the APP line: APP %s local://<path of %s> …", app.Name, f, app.Name, f)
			}
		}
	}
}

// appHasFile reports whether a local source puts file f (a path relative
// to the app directory) into the app: a file source by its base name, a
// directory source by its contents.
func (e *evaluator) appHasFile(app *App, f string) bool {
	for _, s := range app.Sources {
		if s.IsRemote() {
			continue
		}
		st, err := fs.Stat(e.opts.Context, s.Path)
		if err != nil {
			continue
		}
		if !st.IsDir() {
			if path.Base(s.Path) == f {
				return true
			}
			continue
		}
		if _, err := fs.Stat(e.opts.Context, path.Join(s.Path, f)); err == nil {
			return true
		}
	}
	return false
}

func firstDuplicate(list []string) string {
	seen := map[string]bool{}
	for _, s := range list {
		if seen[s] {
			return s
		}
		seen[s] = true
	}
	return ""
}
