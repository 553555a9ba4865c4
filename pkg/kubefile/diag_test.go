package kubefile

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var (
	sha   = strings.Repeat("ab", 32)
	sha2  = strings.Repeat("01", 32)
	fileA = &fstest.MapFile{Data: []byte("a"), Mode: 0o644}
)

// testContext is the build context most tests evaluate against.
func testContext() fstest.MapFS {
	return fstest.MapFS{
		"rootfs/etc/hosts":            fileA,
		"amd64/bin/kubectl":           fileA,
		"arm64/bin/kubectl":           fileA,
		"imageList":                   fileA,
		"calico.sh":                   fileA,
		"nginx.yaml":                  fileA,
		"chart/Chart.yaml":            fileA,
		"chart/values.yaml":           fileA,
		"chart/templates/deploy.yaml": fileA,
		"scripts/b.sh":                fileA,
		"scripts/a.sh":                fileA,
		"manifests/a.yaml":            fileA,
		"manifests/sub/b.yml":         fileA,
		"mixed/a.sh":                  fileA,
		"mixed/b.yaml":                fileA,
		"bin/tool":                    fileA,
		"app.tar.gz":                  fileA,
		"README.md":                   fileA,
		"split/Chart.yaml":            fileA,
		"split/values.yaml":           fileA,
		"split/templates/d.yaml":      fileA,
	}
}

// TestDiagnostics has one entry per diagnostic cnstack can report. Each
// want is "line:col severity: message substring"; the list must match the
// sorted diagnostics of Lint exactly, one for one.
func TestDiagnostics(t *testing.T) {
	const fs = "FROM scratch\n"
	tests := []struct {
		name string
		src  string
		opts EvalOptions
		want []string
	}{
		// Clean files report nothing.
		{"clean base image", "FROM scratch\nCOPY rootfs .\nCOPY ${ARCH} .\nCNI calico local://calico.sh\nLAUNCH [\"calico\"]", EvalOptions{}, nil},

		// Lexical.
		{"invalid escape directive", "# escape=x\nFROM scratch", EvalOptions{}, []string{
			`1:10 error: invalid escape character "x" in "# escape=x"; write # escape=\ or # escape=` + "`"}},
		{"escape directive twice", "# escape=`\n# escape=\\\nFROM scratch", EvalOptions{}, []string{
			`2:1 error: only one escape directive is allowed`}},
		{"platform directive", "# platform=linux\nFROM scratch", EvalOptions{}, []string{
			`1:1 warning: the platform directive is ignored in "# platform=linux"`}},
		{"directive after instruction is a comment", "FROM scratch\n# escape=x", EvalOptions{}, nil},
		{"empty continuation line", fs + "COPY rootfs \\\n\n .", EvalOptions{}, []string{
			`3:1 warning: empty line inside a line continuation`}},
		{"JSON array of non-strings", fs + "COPY [1, 2]", EvalOptions{}, []string{
			`2:6 error: a JSON array here must hold only strings in "COPY [1, 2]"; write ["a", "b"]`}},
		{"text after JSON array", fs + `COPY ["a", "b"] c`, EvalOptions{}, []string{
			`2:17 error: unexpected text "c" after the JSON array in "COPY [\"a\", \"b\"] c"`}},
		{"LAUNCH with invalid JSON", fs + "APP a local://nginx.yaml\nLAUNCH ['a']", EvalOptions{}, []string{
			`3:8 warning: "['a']" is not a valid JSON array, so it is split on whitespace; JSON needs double quotes`,
			`3:8 error: unknown app "['a']" in "LAUNCH ['a']"; declare it with APP ['a'] local://<path> first (known apps: a)`}},
		{"APPCMDS without name", fs + `APPCMDS ["x"]`, EvalOptions{}, []string{
			`2:1 error: APPCMDS needs an app name and a JSON array of commands in "APPCMDS [\"x\"]"`}},
		{"APPCMDS not JSON", fs + "APP a local://nginx.yaml\nAPPCMDS a kubectl apply -f x", EvalOptions{}, []string{
			`3:11 error: APPCMDS commands must be a JSON array of strings, got "kubectl apply -f x" in "APPCMDS a kubectl apply -f x"; write APPCMDS a ["command line"]`}},
		{"untyped app with malformed APPCMDS", fs + "APP m local://mixed\nAPPCMDS m bash a.sh", EvalOptions{}, []string{
			`3:11 error: APPCMDS commands must be a JSON array of strings, got "bash a.sh"`}},
		{"APPCMDS without commands", fs + "APP a local://nginx.yaml\nAPPCMDS a", EvalOptions{}, []string{
			`3:10 error: APPCMDS commands must be a JSON array of strings, got nothing`}},
		{"APPCMDS invalid JSON", fs + "APP a local://nginx.yaml\nAPPCMDS a ['x']", EvalOptions{}, []string{
			`3:11 error: APPCMDS commands must be a JSON array of strings, got "['x']"`}},
		{"APPCMDS text after JSON", fs + "APP a local://nginx.yaml\nAPPCMDS a [\"x\"] y", EvalOptions{}, []string{
			`3:17 error: unexpected text "y" after the JSON array`}},

		// Keywords.
		{"RUN", fs + "RUN curl -o x https://example.com/x", EvalOptions{}, []string{
			`2:1 error: RUN is not supported in "RUN curl -o x https://example.com/x": cnstack does not run containers at build time; put the command's result in the build context and COPY it, or run the command at install time with CMDS ["command line"] or APPCMDS <app> ["command line"]`}},
		{"EXPOSE", fs + "EXPOSE 80", EvalOptions{}, []string{
			`2:1 error: unknown instruction EXPOSE in "EXPOSE 80" (sealer and cnstack do not support it); a cluster image is never run as a container, so ports, users and volumes mean nothing here; supported instructions: FROM, ARG, COPY, ADD, LABEL, MAINTAINER, ENV, APP, CNI, CSI, APPCMDS, APPENV, KUBEVERSION, LAUNCH, CMDS, CMD`}},
		{"WORKDIR", fs + "WORKDIR /x", EvalOptions{}, []string{`2:1 error: unknown instruction WORKDIR in "WORKDIR /x" (sealer and cnstack do not support it); COPY destinations are relative to the image root`}},
		{"USER", fs + "USER root", EvalOptions{}, []string{`2:1 error: unknown instruction USER`}},
		{"VOLUME", fs + "VOLUME /data", EvalOptions{}, []string{`2:1 error: unknown instruction VOLUME`}},
		{"ENTRYPOINT", fs + `ENTRYPOINT ["x"]`, EvalOptions{}, []string{`2:1 error: unknown instruction ENTRYPOINT in "ENTRYPOINT [\"x\"]" (sealer and cnstack do not support it); to run something at install time use LAUNCH ["app"] or CMDS ["command line"]`}},
		{"SHELL", fs + `SHELL ["/bin/bash", "-c"]`, EvalOptions{}, []string{`2:1 error: unknown instruction SHELL`}},
		{"HEALTHCHECK", fs + "HEALTHCHECK NONE", EvalOptions{}, []string{`2:1 error: unknown instruction HEALTHCHECK`}},
		{"ONBUILD", fs + "ONBUILD COPY a b", EvalOptions{}, []string{`2:1 error: unknown instruction ONBUILD in "ONBUILD COPY a b" (sealer and cnstack do not support it); triggers are not supported`}},
		{"STOPSIGNAL", fs + "STOPSIGNAL SIGTERM", EvalOptions{}, []string{`2:1 error: unknown instruction STOPSIGNAL`}},
		{"made-up keyword", fs + "FETCH x", EvalOptions{}, []string{`2:1 error: unknown instruction FETCH in "FETCH x" (sealer and cnstack do not support it); supported instructions: FROM,`}},
		{"lower-case env", fs + "env a=1", EvalOptions{}, []string{
			`2:1 warning: sealer v0.11 needs the upper-case keyword followed by a space ("ENV ") and fails with "invalid ENV instruction" on "env a=1"; write ENV`}},
		{"lower-case cmd", fs + "cmd echo hi", EvalOptions{}, []string{
			`2:1 warning: sealer v0.11 needs the upper-case keyword followed by a space ("CMD ") and crashes on "cmd echo hi"; write CMD`,
			`2:1 warning: CMD is deprecated in sealer; write CMDS ["echo hi"]`}},
		{"CMD containing CMD", fs + "CMD echo CMD here", EvalOptions{}, []string{
			`2:1 warning: sealer v0.11 cuts a CMD line at the next "CMD " in "CMD echo CMD here"`,
			`2:1 warning: CMD is deprecated`}},
		{"lower-case appcmds", fs + "APP a local://nginx.yaml\nappcmds a [\"x\"]", EvalOptions{}, []string{
			`3:1 warning: sealer v0.11 only understands APPCMDS written in upper case with single spaces (APPCMDS a [...]) and rejects "appcmds a [\"x\"]"`}},
		{"APPCMDS double space", fs + "APP a local://nginx.yaml\nAPPCMDS  a [\"x\"]", EvalOptions{}, []string{
			`3:1 warning: sealer v0.11 only understands APPCMDS written in upper case with single spaces`}},

		// Flags.
		{"FROM unknown flag", "FROM --foo=bar scratch", EvalOptions{}, []string{
			`1:6 error: flag --foo is not supported in "FROM --foo=bar scratch"; FROM accepts only --platform=os/arch[/variant]`}},
		{"bad FROM does not hide later errors", "FROM --foo=bar scratch\nCOPY nope .", EvalOptions{}, []string{
			`1:6 error: flag --foo is not supported`, `2:6 error: COPY source "nope" does not exist`}},
		{"FROM --platform without value", "FROM --platform scratch", EvalOptions{}, []string{
			`1:6 error: --platform needs a value in "FROM --platform scratch"; write FROM --platform=linux/amd64 <image>`}},
		{"FROM --platform list", "FROM --platform=linux/amd64,linux/arm64 scratch", EvalOptions{}, []string{
			`1:6 error: FROM --platform takes one platform, got "linux/amd64,linux/arm64"`}},
		{"FROM --platform malformed", "FROM --platform=linux scratch", EvalOptions{}, []string{
			`1:6 error: invalid platform "linux": want os/arch[/variant] in "FROM --platform=linux scratch"`}},
		{"FROM --platform malformed after expansion", "ARG P=amd64\nFROM --platform=$P scratch", EvalOptions{}, []string{
			`2:6 error: --platform=$P expands to "amd64": invalid platform "amd64"`}},
		{"COPY --from", fs + "COPY --from=builder /x /y", EvalOptions{}, []string{
			`2:6 error: COPY --from is not supported in "COPY --from=builder /x /y": multi-stage builds are not supported; copy from the build context`}},
		{"COPY --chown", fs + "COPY --chown=1000:1000 rootfs .", EvalOptions{}, []string{
			`2:6 error: COPY --chown is not supported in "COPY --chown=1000:1000 rootfs .": every file in a cluster image is owned by root (uid 0, gid 0); sealer silently ignores it on COPY`}},
		{"COPY --chmod", fs + "COPY --chmod=755 bin/tool bin/", EvalOptions{}, []string{
			`2:6 error: COPY --chmod is not supported in "COPY --chmod=755 bin/tool bin/" (sealer silently ignores it on COPY); set the mode on the file in the build context`}},
		{"COPY --link", fs + "COPY --link rootfs .", EvalOptions{}, []string{
			`2:6 error: flag --link is not supported in "COPY --link rootfs ."; COPY takes no flags`}},
		{"ADD --chown", fs + "ADD --chown=x app.tar.gz /", EvalOptions{}, []string{`2:5 error: ADD --chown is not supported`}},
		{"ADD unknown flag", fs + "ADD --keep-git-dir=true app.tar.gz /", EvalOptions{}, []string{
			`2:5 error: flag --keep-git-dir is not supported in "ADD --keep-git-dir=true app.tar.gz /"; ADD accepts only --checksum=sha256:<64 hex digits>`}},
		{"flag given twice", "FROM --platform=linux/amd64 --platform=linux/arm64 scratch", EvalOptions{}, []string{
			`1:29 error: flag --platform is given twice`}},
		{"flag on LABEL", fs + "LABEL --x=y a=b", EvalOptions{}, []string{`2:7 error: flag --x is not supported in "LABEL --x=y a=b"; LABEL takes no flags`}},
		{"bad checksum", fs + "ADD --checksum=md5:abc https://example.com/x x", EvalOptions{}, []string{
			`2:5 error: --checksum must be sha256:<64 hex digits>, got "md5:abc"`}},

		// Arity and argument shapes.
		{"FROM without image", "FROM", EvalOptions{}, []string{
			`1:1 error: FROM needs an image reference or scratch in "FROM"; write FROM scratch or FROM registry/repo:tag`}},
		{"FROM AS", "FROM base:v1 AS build", EvalOptions{}, []string{
			`1:14 error: multi-stage builds are not supported, so FROM cannot name a stage in "FROM base:v1 AS build"; write FROM base:v1`}},
		{"FROM two words", "FROM a b", EvalOptions{}, []string{`1:8 error: FROM takes one image reference, got 2 words in "FROM a b"; write FROM a`}},
		{"COPY one argument", fs + "COPY rootfs", EvalOptions{}, []string{
			`2:1 error: COPY needs a source and a destination, got 1 argument(s) in "COPY rootfs"; write COPY <path in build context> <path in image>`}},
		{"COPY several sources", "FROM scratch\nARG X\nARG Y\nLABEL a=b\n\n\nCOPY a b dir/", EvalOptions{}, []string{
			`7:8 error: COPY takes exactly one source and one destination, got 3 arguments in "COPY a b dir/"; write one COPY per source`}},
		{"ADD one argument", fs + "ADD x", EvalOptions{}, []string{`2:1 error: ADD needs a source and a destination, got 1 argument(s)`}},
		{"ADD several sources to a file", fs + "ADD app.tar.gz README.md c", EvalOptions{}, []string{
			`2:26 error: ADD with 2 sources needs a directory destination ending in "/", got "c" in "ADD app.tar.gz README.md c"; write c/`}},
		{"APP without arguments", fs + "APP", EvalOptions{}, []string{
			`2:1 error: APP needs an app name and at least one source in "APP"; write APP <name> local://<path in build context>`}},
		{"APP without sources", fs + "APP nginx", EvalOptions{}, []string{
			`2:1 error: APP nginx has no sources in "APP nginx"; write APP nginx local://<path in build context> (or https://…#sha256=<hex>)`}},
		{"APP without name", fs + "APP local://nginx.yaml", EvalOptions{}, []string{
			`2:5 error: APP needs an app name before its sources, got "local://nginx.yaml" in "APP local://nginx.yaml"; write APP <name> local://nginx.yaml`}},
		{"APP name with slash", fs + "APP a/b local://nginx.yaml", EvalOptions{}, []string{
			`2:5 error: invalid app name "a/b" in "APP a/b local://nginx.yaml": it becomes the directory application/apps/<name>/, so it cannot contain a slash`}},
		{"APP name dot-dot", fs + "CNI .. local://calico.sh", EvalOptions{}, []string{`2:5 error: invalid app name ".." in "CNI .. local://calico.sh": it names a directory`}},
		{"APPENV without arguments", fs + "APPENV", EvalOptions{}, []string{`2:1 error: APPENV needs an app name and key=value pairs in "APPENV"`}},
		{"APPENV without pairs", fs + "APP a local://nginx.yaml\nAPPENV a", EvalOptions{}, []string{`3:1 warning: APPENV a sets nothing in "APPENV a"; write APPENV a key=value`}},
		{"APPENV entry without =", fs + "APP a local://nginx.yaml\nAPPENV a k=v oops", EvalOptions{}, []string{
			`3:14 error: APPENV entries must be key=value, got "oops" in "APPENV a k=v oops" (sealer silently drops it)`}},
		{"LAUNCH empty", fs + "LAUNCH []", EvalOptions{}, []string{`2:1 error: LAUNCH needs at least one app name in "LAUNCH []"; write LAUNCH ["app"]`}},
		{"LAUNCH twice the same app", fs + "APP a local://nginx.yaml\nLAUNCH a a", EvalOptions{}, []string{`3:10 warning: app "a" is listed twice in "LAUNCH a a", so it would be launched twice`}},
		{"CMDS empty", fs + "CMDS []", EvalOptions{}, []string{`2:1 error: CMDS needs at least one command in "CMDS []"`}},
		{"CMDS words", fs + "CMDS kubectl apply -f x.yaml", EvalOptions{}, []string{
			`2:1 warning: CMDS without a JSON array runs every word as a separate command: "kubectl apply -f x.yaml" becomes 4 commands; write CMDS ["kubectl apply -f x.yaml"]`}},
		{"CMD empty", fs + "CMD", EvalOptions{}, []string{`2:1 error: CMD needs a command in "CMD"; write CMDS ["command line"]`}},
		{"CMD JSON", fs + `CMD ["kubectl", "apply"]`, EvalOptions{}, []string{
			`2:1 error: CMD takes a shell command line, not a JSON array, in "CMD [\"kubectl\", \"apply\"]" (sealer stores the brackets literally and the command fails at install time); write CMDS ["kubectl", "apply"]`}},
		{"ARG without name", "ARG\nFROM scratch", EvalOptions{}, []string{`1:1 error: ARG needs a name in "ARG"; write ARG name or ARG name=default`}},
		{"ARG empty name", "ARG =x\nFROM scratch", EvalOptions{}, []string{`1:5 error: ARG needs a name before '=', got "=x" in "ARG =x"`}},
		{"ARG bad name", "ARG my-var=1\nFROM scratch", EvalOptions{}, []string{`1:5 warning: ARG name "my-var" in "ARG my-var=1" cannot be referenced as $name`}},
		{"ENV without pairs", fs + "ENV", EvalOptions{}, []string{`2:1 error: ENV needs key=value pairs in "ENV"; write ENV key=value`}},
		{"ENV legacy without value", fs + "ENV key", EvalOptions{}, []string{`2:1 error: ENV needs a value in "ENV key"; write ENV key=value`}},
		{"ENV legacy", fs + "ENV key some value", EvalOptions{}, []string{
			`2:1 warning: legacy form ENV key value in "ENV key some value"; write ENV key="some value" (sealer leaves the legacy form out of the image's env; cnstack includes it)`}},
		{"ENV pair without =", fs + "ENV a=1 b", EvalOptions{}, []string{`2:9 error: ENV pairs must be key=value, got "b" in "ENV a=1 b"`}},
		{"LABEL empty key", fs + `LABEL =x`, EvalOptions{}, []string{`2:7 error: LABEL key is empty in "=x" in "LABEL =x"`}},
		{"LABEL key quoted empty", fs + `LABEL ""=x`, EvalOptions{}, []string{`2:7 error: LABEL key "\"\"" expands to "" in "LABEL \"\"=x"`}},
		{"LABEL legacy without value", fs + "LABEL key", EvalOptions{}, []string{`2:1 error: LABEL needs a value in "LABEL key"; write LABEL key=value`}},
		{"MAINTAINER empty", fs + "MAINTAINER", EvalOptions{}, []string{`2:1 error: MAINTAINER needs a name`}},
		{"KUBEVERSION empty", fs + "KUBEVERSION", EvalOptions{}, []string{`2:1 error: KUBEVERSION needs a version range`}},
		{"KUBEVERSION not a range", fs + "KUBEVERSION latest", EvalOptions{}, []string{`2:13 warning: KUBEVERSION "latest" is not a semver range`}},

		// Order.
		{"instruction before FROM", "COPY rootfs .\nFROM scratch", EvalOptions{}, []string{
			`1:1 error: COPY comes before FROM in "COPY rootfs ."; only ARG may come before FROM`}},
		{"no FROM", "# nothing\n", EvalOptions{}, []string{`1:1 error: no FROM instruction; a Kubefile starts with FROM scratch or FROM <base image>`}},
		{"no FROM but ARG", "ARG A=1", EvalOptions{}, []string{`1:1 error: no FROM instruction`}},
		{"two FROMs", fs + "COPY rootfs .\nFROM scratch", EvalOptions{}, []string{
			`3:1 error: only one FROM is allowed (the first is at line 1) in "FROM scratch"; multi-stage builds are not supported`}},
		{"LAUNCH not last", fs + "APP a local://nginx.yaml\nLAUNCH [\"a\"]\nCOPY rootfs .", EvalOptions{}, []string{
			`3:1 error: LAUNCH must be the last instruction, but line 4 has COPY after it, in "LAUNCH [\"a\"]"; move it to the end`}},
		{"two LAUNCHes", fs + "APP a local://nginx.yaml\nLAUNCH [\"a\"]\nLAUNCH [\"a\"]", EvalOptions{}, []string{
			`4:1 error: only one LAUNCH is allowed (the first is at line 3) in "LAUNCH [\"a\"]"; list everything in one LAUNCH`}},
		{"CMDS not last", fs + "CMDS [\"x\"]\nLABEL a=b", EvalOptions{}, []string{
			`2:1 error: CMDS must be the last instruction, but line 3 has LABEL after it`}},
		{"two CMDS", fs + "CMDS [\"x\"]\nCMDS [\"y\"]", EvalOptions{}, []string{`3:1 error: only one CMDS is allowed (the first is at line 2)`}},
		{"LAUNCH and CMDS", fs + "APP a local://nginx.yaml\nLAUNCH [\"a\"]\nCMDS [\"x\"]", EvalOptions{}, []string{
			`4:1 error: LAUNCH and CMDS cannot both be used (sealer requires each to be the last instruction) in "CMDS [\"x\"]"`}},
		{"CMD then LAUNCH", fs + "APP a local://nginx.yaml\nCMD echo hi\nLAUNCH [\"a\"]", EvalOptions{}, []string{
			`3:1 warning: CMD is deprecated`,
			`4:1 error: CMD (line 3) and LAUNCH cannot be combined in "LAUNCH [\"a\"]"; move the commands into APPCMDS of an app, or drop LAUNCH and use CMDS`}},
		{"LAUNCH then CMD", fs + "APP a local://nginx.yaml\nLAUNCH [\"a\"]\nCMD echo hi", EvalOptions{}, []string{
			`3:1 error: LAUNCH must be the last instruction, but line 4 has CMD after it`,
			`4:1 warning: CMD is deprecated`,
			`4:1 error: CMD and LAUNCH (line 3) cannot be combined`}},
		{"CMD and CMDS accumulate", fs + "CMD echo a\nCMDS [\"echo b\"]", EvalOptions{}, []string{`2:1 warning: CMD is deprecated`}},

		// Expansion.
		{"FROM expands to nothing", "ARG BASE\nFROM $BASE", EvalOptions{}, []string{
			`2:6 warning: ARG BASE has no default and no --build-arg was given, so it expands to "" in "FROM $BASE"; give it a default (ARG BASE=value) or pass --build-arg BASE=value`,
			`2:6 error: FROM $BASE expands to an empty image reference in "FROM $BASE"; give the ARG a default or pass --build-arg`}},
		{"FROM invalid reference", "FROM Not_A/Ref:::", EvalOptions{}, []string{`1:6 error: FROM "Not_A/Ref:::" is not a valid image reference in "FROM Not_A/Ref:::"`}},
		{"undefined variable", fs + "COPY ${ARCH} ${DEST}", EvalOptions{}, []string{
			`2:14 warning: variable DEST is not defined, so it expands to "" in "COPY ${ARCH} ${DEST}"; declare ARG DEST (or ENV DEST=…), or write ${DEST:-default}`,
			`2:14 error: COPY destination "${DEST}" is empty in "COPY ${ARCH} ${DEST}"; write . for the image root`}},
		{"defaults do not warn", fs + "COPY ${SRC:-rootfs} ${DEST-.}", EvalOptions{}, nil},
		{"ARG before FROM is not visible after it", "ARG D=x\nFROM scratch\nCOPY rootfs ${D}", EvalOptions{}, []string{
			`3:13 warning: variable D is not defined`, `3:13 error: COPY destination "${D}" is empty`}},
		{"bad substitution", fs + "COPY ${ rootfs", EvalOptions{}, []string{
			`2:6 error: cannot expand "${" in "COPY ${ rootfs": bad substitution: ${ must be followed by a variable name`}},
		{"unsupported modifier", fs + "COPY ${A/x/y} .", EvalOptions{}, []string{`2:6 error: cannot expand "${A/x/y}" in "COPY ${A/x/y} .": bad substitution in ${A…}`}},
		{"required variable", fs + `COPY ["${SRC:?set SRC}", "."]`, EvalOptions{}, []string{`2:7 error: cannot expand "${SRC:?set SRC}" in "COPY [\"${SRC:?set SRC}\", \".\"]": SRC: set SRC`}},
		{"required variable empty", fs + "ARG SRC=\nCOPY ${SRC:?} .", EvalOptions{}, []string{`3:6 error: cannot expand "${SRC:?}" in "COPY ${SRC:?} .": SRC: is empty`}},
		{"unterminated quote", fs + `LABEL a="b`, EvalOptions{}, []string{`2:7 error: cannot expand "\"b" in "LABEL a=\"b": unterminated double quote`}},
		{"ENV key expands to nothing", fs + "ENV ${NOPE:-}=x", EvalOptions{}, []string{`2:5 error: ENV key "${NOPE:-}" expands to ""`}},

		// Sources.
		{"COPY missing source", fs + "COPY nope .", EvalOptions{}, []string{
			`2:6 error: COPY source "nope" does not exist in the build context in "COPY nope ."`}},
		{"COPY missing source after expansion", fs + "COPY ${ARCH}/nope .", EvalOptions{}, []string{
			`2:6 error: COPY source "amd64/nope" (from "${ARCH}/nope") does not exist in the build context`}},
		{"COPY glob without match", fs + "COPY *.txt .", EvalOptions{}, []string{`2:6 error: COPY source pattern "*.txt" matches nothing in the build context`}},
		{"COPY glob", fs + "COPY manifests/*.yaml m/", EvalOptions{}, nil},
		{"COPY outside the context", fs + "COPY ../secret .", EvalOptions{}, []string{
			`2:6 error: COPY source "../secret" leaves the build context in "COPY ../secret ."; sources must be paths inside the context directory`}},
		{"COPY URL", fs + "COPY https://example.com/x x", EvalOptions{}, []string{
			`2:6 error: COPY cannot download "https://example.com/x" in "COPY https://example.com/x x"; write ADD --checksum=sha256:<64 hex digits> https://example.com/x x`}},
		{"COPY local://", fs + "COPY local://rootfs .", EvalOptions{}, []string{
			`2:6 error: COPY takes a plain path in the build context, not "local://rootfs", in "COPY local://rootfs ."; write COPY rootfs . (local:// is for APP, CNI and CSI)`}},
		{"COPY source expands to nothing", fs + "ARG S\nCOPY $S .", EvalOptions{}, []string{`3:6 warning: ARG S has no default`, `3:6 error: COPY source "$S" is empty`}},
		{"ADD remote without checksum", fs + "ADD https://example.com/x.tgz /opt/", EvalOptions{}, []string{
			`2:5 error: ADD of a remote URL must pin its content in "ADD https://example.com/x.tgz /opt/"; write ADD --checksum=sha256:<64 hex digits> https://example.com/x.tgz /opt/`}},
		{"ADD checksum on local source", fs + "ADD --checksum=sha256:" + sha + " app.tar.gz /", EvalOptions{}, []string{
			`2:5 error: --checksum only applies to a URL source, but "app.tar.gz" is a local path`}},
		{"ADD checksum with two sources", fs + "ADD --checksum=sha256:" + sha + " https://e.com/a https://e.com/b d/", EvalOptions{}, []string{
			`2:88 error: ADD --checksum pins exactly one URL`, `2:104 error: ADD --checksum pins exactly one URL`}},
		{"ADD unsupported scheme", fs + "ADD ftp://e.com/a d/", EvalOptions{}, []string{`2:5 error: ADD source "ftp://e.com/a" has an unsupported scheme`}},
		{"ADD missing local", fs + "ADD nope.tgz /", EvalOptions{}, []string{`2:5 error: ADD source "nope.tgz" does not exist in the build context`}},
		{"ADD bad URL", fs + "ADD --checksum=sha256:" + sha + " https:///x d", EvalOptions{}, []string{`2:88 error: ADD source "https:///x" is not a valid URL`}},
		{"ADD checksum expands to junk", fs + "ARG C=sha256:1\nADD --checksum=$C https://e.com/x d", EvalOptions{}, []string{
			`3:5 error: --checksum=$C expands to "sha256:1", which is not sha256:<64 hex digits>`}},
		{"APP source without scheme", fs + "APP nginx nginx.yaml", EvalOptions{}, []string{
			`2:11 error: APP source "nginx.yaml" has no scheme in "APP nginx nginx.yaml"; write local://nginx.yaml for a path in the build context (or an http(s):// URL with #sha256=<hex>)`}},
		{"APP unknown scheme", fs + "APP nginx ftp://x/y", EvalOptions{}, []string{
			`2:11 error: APP source "ftp://x/y" has the unknown scheme ftp:// in "APP nginx ftp://x/y"; sources start with local://, http:// or https:// (or, for a Helm chart, helm+https:// or oci://)`}},
		{"APP chart without version", fs + "APP nginx oci://x/y", EvalOptions{}, []string{
			`2:11 error: APP source "oci://x/y": the chart's version is missing; write oci://<registry>/<repository>/<chart>:<version>, in "APP nginx oci://x/y"`}},
		{"APP chart range", fs + "APP nginx helm+https://charts.example.com/nginx:^1.2", EvalOptions{}, []string{
			`2:11 error: APP source "helm+https://charts.example.com/nginx:^1.2": chart version "^1.2" is not a SemVer version`}},
		{"APP empty local", fs + "APP nginx local://", EvalOptions{}, []string{`2:11 error: APP source "local://" names no path`}},
		{"APP absolute local", fs + "APP nginx local:///etc/nginx.yaml", EvalOptions{}, []string{
			`2:11 error: APP source "local:///etc/nginx.yaml" is an absolute path in "APP nginx local:///etc/nginx.yaml"; write a path relative to the build context, local://etc/nginx.yaml`}},
		{"APP outside the context", fs + "APP nginx local://../nginx.yaml", EvalOptions{}, []string{`2:11 error: APP source "local://../nginx.yaml" leaves the build context`}},
		{"APP missing local", fs + "APP nginx local://nope.yaml", EvalOptions{}, []string{`2:11 error: APP source "nope.yaml" does not exist in the build context in "APP nginx local://nope.yaml"`}},
		{"APP remote unpinned", fs + "APP x https://example.com/x.yaml", EvalOptions{}, []string{
			`2:7 error: remote APP source "https://example.com/x.yaml" must pin its content in "APP x https://example.com/x.yaml"; append the file's SHA-256: https://example.com/x.yaml#sha256=<64 hex digits>`}},
		{"APP remote badly pinned", fs + "APP x https://example.com/x.yaml#sha256=abc", EvalOptions{}, []string{`2:7 error: remote APP source "https://example.com/x.yaml#sha256=abc" must pin its content`}},
		{"APP remote without file name", fs + "APP x https://example.com/#sha256=" + sha, EvalOptions{}, []string{`2:7 error: remote APP source "https://example.com/#sha256=` + sha + `" has no file name in its path`}},

		// Apps.
		{"untyped app without APPCMDS", fs + "APP m local://mixed", EvalOptions{}, []string{
			`2:1 error: app m has no detectable type in "APP m local://mixed" (helm needs Chart.yaml, values.yaml and templates/; kube needs only .yaml/.yml files; shell needs only .sh files), so it needs APPCMDS m ["command line"] to say how to install it`}},
		{"untyped app with APPCMDS", fs + "APP m local://mixed\nAPPCMDS m [\"bash a.sh\"]", EvalOptions{}, nil},
		{"untyped app with empty APPCMDS", fs + "APP m local://README.md\nAPPCMDS m []", EvalOptions{}, []string{`3:1 error: APPCMDS m is empty, and app m has no detectable type`}},
		{"untyped remote app", fs + "APP x https://e.com/x.tgz#sha256=" + sha, EvalOptions{Context: nil}, []string{`2:1 error: app x has no detectable type`}},
		{"chart app", fs + "APP d local://nginx.yaml helm+https://charts.example.com/dapr:1.16.19\nAPPCMDS d [\"helm upgrade --install dapr dapr.tgz -n dapr-system -f nginx.yaml\"]", EvalOptions{}, nil},
		{"chart app without APPCMDS", fs + "APP d oci://r.example.com/charts/dapr:1.16.19", EvalOptions{}, []string{
			`2:1 error: app d has no detectable type`}},
		{"chart app without APPCMDS, no context", fs + "APP d local://v.yaml oci://r.example.com/charts/dapr:1.16.19", EvalOptions{Context: nil}, []string{
			`2:1 error: app d carries the Helm chart dapr.tgz, so it needs APPCMDS to install it: APPCMDS d ["helm upgrade --install d dapr.tgz --namespace <namespace> --create-namespace -f <values file>"]`}},
		{"chart app not installing its chart", fs + "APP d oci://r.example.com/charts/dapr:1.16.19\nAPPCMDS d [\"helm install d other.tgz\"]", EvalOptions{}, []string{
			`3:1 error: app d carries the chart dapr.tgz, but its APPCMDS install no chart of that name`}},
		{"chart app with an unreadable helm command", fs + "APP d oci://r.example.com/charts/dapr:1.16.19\nAPPCMDS d [\"helm install d dapr.tgz --magic x\"]", EvalOptions{}, []string{
			`3:1 error: APPCMDS d: cannot read its helm command: helm install d dapr.tgz --magic x: cnstack does not know whether helm's flag --magic takes a value`}},
		{"chart app with a values file it lacks", fs + "APP d local://nginx.yaml oci://r.example.com/charts/dapr:1.16.19\nAPPCMDS d [\"helm install d dapr.tgz -f nginx.yaml -f v.yaml\"]", EvalOptions{}, []string{
			`3:1 error: APPCMDS d reads v.yaml, which is not one of the app's files`}},
		{"chart app with values in a directory", fs + "APP d local://manifests oci://r.example.com/charts/dapr:1.16.19\nAPPCMDS d [\"helm install d dapr.tgz -f sub/b.yml\"]", EvalOptions{}, nil},
		{"two charts of one name", fs + "APP d oci://r.example.com/a/dapr:1.0.0 oci://r.example.com/b/dapr:1.0.0\nAPPCMDS d [\"helm install d dapr.tgz\"]", EvalOptions{}, []string{
			`2:1 error: app d has two charts named dapr.tgz`}},
		{"APPCMDS unknown app", fs + "APPCMDS nginx [\"x\"]", EvalOptions{}, []string{
			`2:9 error: unknown app "nginx" in "APPCMDS nginx [\"x\"]"; declare it with APP nginx local://<path> first (none are declared)`}},
		{"APPCMDS before APP", fs + "APPCMDS nginx [\"x\"]\nAPP nginx local://nginx.yaml", EvalOptions{}, []string{
			`2:9 error: app "nginx" is used in "APPCMDS nginx [\"x\"]" before it is declared (line 3); move the APPCMDS after the APP/CNI/CSI that declares it`}},
		{"APPENV unknown app", fs + "APP a local://nginx.yaml\nAPPENV b k=v", EvalOptions{}, []string{`3:8 error: unknown app "b" in "APPENV b k=v"; declare it with APP b local://<path> first (known apps: a)`}},
		{"LAUNCH unknown app", fs + "APP a local://nginx.yaml\nLAUNCH [\"a\", \"b\"]", EvalOptions{}, []string{`3:14 error: unknown app "b"`}},
		{"LAUNCH base app", "FROM base:v1\nLAUNCH [\"calico\"]", EvalOptions{BaseApps: []string{"calico"}}, nil},
		{"LAUNCH unknown with known base", "FROM base:v1\nLAUNCH [\"x\"]", EvalOptions{BaseApps: []string{"calico"}}, []string{`2:9 error: unknown app "x" in "LAUNCH [\"x\"]"; declare it with APP x local://<path> first (known apps: calico)`}},
		{"LAUNCH with unknown base apps", "FROM base:v1\nLAUNCH [\"x\"]", EvalOptions{}, nil},
		{"app redeclared", fs + "APP a local://nginx.yaml\nAPP a local://calico.sh", EvalOptions{}, []string{
			`3:1 warning: APP a replaces the app of the same name declared at line 2 in "APP a local://calico.sh"`}},
		{"app replaces inherited", "FROM base:v1\nAPP calico local://calico.sh", EvalOptions{BaseApps: []string{"calico"}}, []string{
			`2:1 warning: APP calico replaces the app calico inherited from the base image`}},
		{"APPCMDS twice", fs + "APP a local://nginx.yaml\nAPPCMDS a [\"x\"]\nAPPCMDS a [\"y\"]", EvalOptions{}, []string{
			`4:1 warning: APPCMDS for a replaces the one at line 3 in "APPCMDS a [\"y\"]"; the last one wins`}},
		{"chart split into sources", fs + "APP c local://split/Chart.yaml local://split/values.yaml local://split/templates", EvalOptions{}, []string{
			`2:1 warning: the directory source "split/templates" is copied by its contents, so the chart's templates/ directory would not exist in the app; declare the chart's directory as the single source`}},

		// Built-ins.
		{"ARG built-in with default", "FROM scratch\nARG ARCH=arm64", EvalOptions{}, []string{
			`2:5 warning: ARCH is set from the target platform ("amd64" here), so the default "arm64" is ignored in "ARG ARCH=arm64"; drop the default`}},
		{"build arg for a built-in", "FROM scratch\nARG TARGETARCH", EvalOptions{BuildArgs: map[string]string{"TARGETARCH": "x"}}, []string{
			`2:5 warning: --build-arg TARGETARCH is ignored: TARGETARCH is set from the target platform; use --platform`}},
		{"ENV shadows a built-in", fs + "ENV ARCH=x86", EvalOptions{}, []string{`2:1 warning: ENV ARCH shadows the built-in variable`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			if opts.Context == nil && !strings.Contains(tt.name, "remote app") && !strings.Contains(tt.name, "no context") {
				opts.Context = testContext()
			}
			_, ds := Lint("Kubefile", []byte(tt.src), opts)
			assertDiags(t, ds, tt.want)
		})
	}
}

func assertDiags(t *testing.T, ds Diagnostics, want []string) {
	t.Helper()
	var got []string
	for _, d := range ds {
		got = append(got, fmt.Sprintf("%s %s: %s", lineCol(d.Pos), d.Severity, d.Msg))
		if d.Pos.File != "Kubefile" {
			t.Errorf("diagnostic %q has file %q", d.Error(), d.Pos.File)
		}
	}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = strings.HasPrefix(got[i], want[i])
	}
	if !ok {
		t.Errorf("diagnostics:\n  got:\n    %s\n  want (prefixes):\n    %s", strings.Join(got, "\n    "), strings.Join(want, "\n    "))
	}
}

func TestDiagnosticsAPI(t *testing.T) {
	_, ds := Lint("Kubefile", []byte("FROM scratch\nCOPY a b c\nENV k v"), EvalOptions{})
	if len(ds.Errors()) != 1 || len(ds.Warnings()) != 1 || !ds.HasErrors() {
		t.Fatalf("Errors %v Warnings %v", ds.Errors(), ds.Warnings())
	}
	err := ds.Err()
	if err == nil || !strings.HasPrefix(err.Error(), "Kubefile:2:8: COPY takes exactly one source") {
		t.Fatalf("Err() = %v", err)
	}
	if strings.Contains(err.Error(), "legacy") {
		t.Errorf("Err() includes warnings: %v", err)
	}
	if (Diagnostics{ds[1]}).Err() != nil {
		t.Errorf("warnings alone must not be an error")
	}
	var p Pos
	if err := p.UnmarshalText([]byte("C:/x/Kubefile:3:14")); err != nil || p != (Pos{File: "C:/x/Kubefile", Line: 3, Col: 14}) {
		t.Errorf("UnmarshalText = %+v, %v", p, err)
	}
}

func TestLintPlatforms(t *testing.T) {
	src := "FROM scratch\nCOPY a b c\nCOPY ${ARCH}/nope .\nAPP x local://missing.yaml\nLAUNCH [\"x\"]"
	amd, arm := ocispec.Platform{OS: "linux", Architecture: "amd64"}, ocispec.Platform{OS: "linux", Architecture: "arm64"}
	_, ds := Lint("Kubefile", []byte(src), EvalOptions{Context: testContext()}, amd, arm)
	assertDiags(t, ds, []string{
		`2:8 error: COPY takes exactly one source and one destination`, // once, not per platform
		`3:6 error: COPY source "amd64/nope"`,
		`3:6 error: COPY source "arm64/nope"`,
		`4:7 error: APP source "missing.yaml" does not exist`, // LAUNCH x is not reported again
	})
}

// Defect 10: an unknown instruction is echoed with its control bytes
// escaped, so a hostile Kubefile cannot drive the user's terminal.
func TestMessagesEscapeControlBytes(t *testing.T) {
	for _, src := range []string{
		"FROM scratch\n\x1b[2J\x1b[31mEVIL arg\n",
		"FROM scratch\nFOO\rBAR x\n",
		"FROM scratch\nCOPY \x1b]0;title\x07\n",
		"FROM \x1b[31mimage\nCOPY a b\n",
	} {
		_, ds := Lint("Kube\x1bfile", []byte(src), EvalOptions{})
		if len(ds) == 0 {
			t.Fatalf("%q: no diagnostics", src)
		}
		for _, d := range ds {
			for _, s := range []string{d.Msg, d.Error()} {
				if strings.ContainsAny(s, "\x1b\r\x07") {
					t.Errorf("%q: message carries raw control bytes: %q", src, s)
				}
			}
		}
		if err := ds.Err(); err != nil && strings.ContainsAny(err.Error(), "\x1b\r\x07") {
			t.Errorf("%q: error carries raw control bytes: %q", src, err)
		}
	}
}

// Defect 10: a Kubefile that is a FIFO is refused at once (a read would block).
func TestReadFileRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "Kubefile")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadFile(fifo); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "FIFO") {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadFile blocks on a FIFO")
	}
	if _, err := ReadFile(dir); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("dir: %v", err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, MaxFileSize+1), 0o644)
	if _, err := ReadFile(big); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("big: %v", err)
	}
}
