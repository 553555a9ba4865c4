package kubefile

import (
	"fmt"
	"io/fs"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cnstack/cnstack/pkg/chartref"
)

// Labels and paths of the sealer format that Kubefile instructions produce.
const (
	// LabelKubeCNIPrefix + <app> = "true" is set by CNI <app> ….
	LabelKubeCNIPrefix = "cluster.alpha.sealer.io/kube-cni-"
	// LabelKubeCSIPrefix + <app> = "true" is set by CSI <app> ….
	LabelKubeCSIPrefix = "cluster.alpha.sealer.io/kube-csi-"
	// LabelKubeCNI and LabelKubeCSI are what sealer inspect folds the
	// per-app labels into (a JSON list of app names).
	LabelKubeCNI = "cluster.alpha.sealer.io/kube-cni"
	LabelKubeCSI = "cluster.alpha.sealer.io/kube-csi"
	// LabelSupportedKubeVersion is set by KUBEVERSION.
	LabelSupportedKubeVersion = "app.alpha.sealer.io/supported-kube-version"
	// AppRoot is where APP/CNI/CSI put an app's files, relative to the image root.
	AppRoot = "application/apps"
)

// App types detected from an app's sources, as sealer names them.
const (
	AppTypeHelm  = "helm"
	AppTypeKube  = "kube"
	AppTypeShell = "shell"
	// AppTypeUnknown needs APPCMDS to say how to install the app.
	AppTypeUnknown = ""
)

// AppDir returns the image directory of an app, "application/apps/<name>/".
func AppDir(name string) string { return AppRoot + "/" + name + "/" }

// EvalOptions are the inputs of Evaluate besides the file.
type EvalOptions struct {
	// Platform is the target platform; zero means the default, linux/amd64.
	Platform ocispec.Platform
	// BuildArgs are --build-arg values; they override ARG defaults. The
	// value is everything after the first '=' of k=v, so it may contain '='.
	BuildArgs map[string]string
	// Context is the build context. Paths in COPY/ADD sources and local://
	// app sources are relative to its root. It is used to check that sources
	// exist and to detect app types. Nil skips both (types of local apps stay
	// unknown, and the "untyped app needs APPCMDS" rule is not applied to them).
	Context fs.FS
	// BaseApps are the names of the apps the FROM image carries. Nil means
	// unknown: references to apps not declared in this file are then not
	// checked, unless FROM is scratch (which has none).
	BaseApps []string
}

// Image is what a builder executes for one platform: the expanded, validated
// Kubefile.
type Image struct {
	From  From   `json:"from"`
	Steps []Step `json:"steps"`
	// Apps declared in this file, in order of first declaration; a
	// redeclaration replaces the earlier one in place.
	Apps []App `json:"apps,omitempty"`
	// AppUpdates are APPCMDS/APPENV aimed at apps inherited from the base.
	AppUpdates []AppUpdate `json:"appUpdates,omitempty"`
	Launch     *Launch     `json:"launch,omitempty"`
	// Env is the global env of the image extension (and the config Env): every ENV pair.
	Env map[string]string `json:"env,omitempty"`
	// Labels is every label this file sets, CNI/CSI/KUBEVERSION ones included
	// (labels inherited from the base are not here).
	Labels map[string]string `json:"labels,omitempty"`
	// Author is the MAINTAINER text, for the config's author field.
	Author string `json:"author,omitempty"`
	// UsedArgs are the build args some ARG consumed, sorted; callers warn
	// about the other --build-arg names.
	UsedArgs []string `json:"usedArgs,omitempty"`
	// Platform is the target platform this image was evaluated for.
	Platform ocispec.Platform `json:"platform"`
}

// From is the evaluated FROM instruction.
type From struct {
	// Ref is "scratch" or an image reference, expanded.
	Ref string `json:"ref"`
	// Platform is the --platform flag, when given: the base's platform to use.
	Platform *ocispec.Platform `json:"platform,omitempty"`
	Pos      Pos               `json:"pos"`
}

// IsScratch reports whether the image starts from nothing.
func (f From) IsScratch() bool { return f.Ref == "scratch" }

// StepKind says what a step does to the image.
type StepKind int

const (
	// StepCopy puts files into the image: COPY, ADD, APP, CNI, CSI.
	StepCopy StepKind = iota
	// StepLabel sets config labels: LABEL, KUBEVERSION, and the label half of CNI/CSI.
	StepLabel
	// StepEnv sets env: ENV.
	StepEnv
	// StepMaintainer sets the author: MAINTAINER.
	StepMaintainer
	// StepArg declares build args after FROM: ARG.
	StepArg
	// StepMeta changes only the image extension: APPCMDS, APPENV, LAUNCH, CMDS, CMD.
	StepMeta
)

var stepKindNames = []string{"copy", "label", "env", "maintainer", "arg", "meta"}

func (k StepKind) String() string {
	if int(k) < len(stepKindNames) && k >= 0 {
		return stepKindNames[k]
	}
	return fmt.Sprintf("StepKind(%d)", int(k))
}

// MarshalText encodes the kind by name.
func (k StepKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText decodes a kind name.
func (k *StepKind) UnmarshalText(b []byte) error {
	for i, n := range stepKindNames {
		if n == string(b) {
			*k = StepKind(i)
			return nil
		}
	}
	return fmt.Errorf("unknown step kind %q", b)
}

// KeyValue is one pair of ARG, ENV, LABEL or APPENV, expanded.
type KeyValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	// Unset is true for an ARG with no default and no build arg.
	Unset bool `json:"unset,omitempty"`
}

// Source is one source of a StepCopy.
type Source struct {
	// Path is relative to the build context, cleaned, with no leading "/"
	// ("." is the context root). For COPY and ADD it may be a glob pattern
	// (path.Match syntax, see Glob); the builder expands it.
	Path string `json:"path,omitempty"`
	// Glob is true when Path holds wildcard characters.
	Glob bool `json:"glob,omitempty"`
	// URL is a remote source (ADD, APP/CNI/CSI), without any #sha256= fragment.
	URL string `json:"url,omitempty"`
	// Checksum pins a remote source: "sha256:<64 lower-case hex digits>".
	// A chart's pin is in the lock file, not here.
	Checksum string `json:"checksum,omitempty"`
	// Chart is set for a Helm chart source (helm+https://…, oci://…: a
	// cnstack extension, see pkg/chartref); URL is then its canonical
	// reference, and the app directory gets the archive as Chart.FileName().
	Chart *chartref.Ref `json:"chart,omitempty"`
	Pos   Pos           `json:"pos"`
}

// IsRemote reports whether the source is downloaded (charts included).
func (s Source) IsRemote() bool { return s.URL != "" }

// IsChart reports whether the source is a Helm chart reference.
func (s Source) IsChart() bool { return s.Chart != nil }

// Step is one evaluated instruction, in file order.
type Step struct {
	Kind  StepKind     `json:"kind"`
	Instr *Instruction `json:"-"`
	Pos   Pos          `json:"pos"`
	// Sources and Dest are set for StepCopy. A directory source copies its
	// contents (Docker semantics). Dest is relative to the image root,
	// cleaned, "." for the root; a trailing "/" (as written, or always for
	// APP/CNI/CSI: "application/apps/<name>/") means "into this directory".
	Sources []Source `json:"sources,omitempty"`
	Dest    string   `json:"dest,omitempty"`
	// Unpack is set for ADD: local tar archives (plain, gzip, bzip2, xz) are
	// unpacked into Dest as Docker's ADD does; remote files are not.
	Unpack bool `json:"unpack,omitempty"`
	// App is the app an APP/CNI/CSI/APPCMDS/APPENV step is about.
	App string `json:"app,omitempty"`
	// Key and Value are the first pair of Pairs (label/env/arg), or the
	// MAINTAINER text in Value.
	Key   string     `json:"key,omitempty"`
	Value string     `json:"value,omitempty"`
	Pairs []KeyValue `json:"pairs,omitempty"`
	// Text is the canonical expanded instruction, stable across machines
	// and directories, for history and cache keys.
	Text string `json:"text"`
}

// App is an application declared by APP, CNI or CSI, with everything this
// file says about it.
type App struct {
	Name string `json:"name"`
	// Type is helm, kube, shell or "" (installed by its APPCMDS).
	Type string `json:"type"`
	// Files are the app's launch files as sealer lists them: [name] for
	// helm, each file relative to the app directory for kube, the first
	// source's files for shell.
	Files   []string          `json:"files,omitempty"`
	Cmds    []string          `json:"cmds,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	Sources []Source          `json:"sources"`
	// Kind is the declaring keyword: APP, CNI or CSI.
	Kind string `json:"kind"`
	Pos  Pos    `json:"pos"`
	// TypeKnown is false when the type could not be detected because no
	// build context was given.
	TypeKnown bool `json:"-"`
}

// AppUpdate is what this file says about an app inherited from the base.
type AppUpdate struct {
	Name string `json:"name"`
	// Cmds replaces the app's commands when CmdsSet.
	Cmds    []string `json:"cmds,omitempty"`
	CmdsSet bool     `json:"cmdsSet,omitempty"`
	// Env keys are set on top of the base app's env (sealer would replace the
	// whole map; merging keeps the base's other keys).
	Env map[string]string `json:"env,omitempty"`
	Pos Pos               `json:"pos"`
}

// Launch is what sealer run starts: LAUNCH apps, or CMDS/CMD commands.
type Launch struct {
	AppNames []string `json:"appNames,omitempty"`
	Cmds     []string `json:"cmds,omitempty"`
	Pos      Pos      `json:"pos"`
}
