// Package kubefile parses, checks and evaluates Kubefiles, the build files of
// Sealer cluster images, in the dialect cnstack builds.
//
// The package is pure: it reads nothing but the bytes it is given and the
// build context through the fs.FS in EvalOptions. Three entry points:
//
//   - Parse lexes and parses a Kubefile and runs every check that needs
//     neither a platform nor a build context (keywords, argument shapes,
//     flags, instruction order).
//   - Evaluate expands variables for one target platform and validates what
//     depends on the platform, the build args, the build context and the apps
//     of the base image. Its Image is what a builder executes.
//   - Lint does both, for several platforms, and returns every finding once:
//     what `cnstack lint` prints.
//
// Every Diagnostic has a position (file:line:col), a severity (error or
// warning) and a message that quotes the offending text and says what would
// be valid, for example:
//
//	Kubefile:7:8: COPY takes exactly one source and one destination, got 3 arguments in "COPY a b dir/"; write one COPY per source
//
// All findings are collected; nothing stops at the first error.
//
// # The dialect
//
// The base is sealer v0.11's Kubefile language (a trimmed Dockerfile parser,
// see sealer-format.md §1), with sealer's lexical rules:
//
//   - Keywords are case-insensitive (cnstack reports them in upper case).
//   - A line whose first non-blank character is # is a comment. There are
//     no inline comments: a # in mid-line is part of the arguments.
//   - Parser directives come before the first instruction: "# escape=\" or
//     "# escape=`" (default backslash). "# platform=" is ignored (warning).
//     A UTF-8 byte-order mark on line 1 is stripped.
//   - The escape character at the end of a line, optionally followed by
//     blanks, continues the instruction on the next line. Blank and comment
//     lines inside a continuation are skipped (blank ones with a warning).
//   - Leading --name=value words are flags. Only FROM --platform=os/arch[/variant]
//     and ADD --checksum=sha256:<hex> are accepted.
//   - Arguments: COPY, ADD, APP, CNI, CSI, APPENV, LAUNCH and CMDS take a
//     JSON string array or whitespace-separated words; APPCMDS takes an app
//     name and a JSON string array; ARG, ENV and LABEL take shell words with
//     quotes (LABEL and ENV also the legacy "key value" form); MAINTAINER,
//     KUBEVERSION and CMD take the rest of the line.
//
// Instructions:
//
//	FROM [--platform=os/arch[/variant]] <image>|scratch   exactly one, first (only ARG may precede it)
//	ARG name[=default] ...                                 before FROM: usable in FROM only
//	COPY <src> <dest>                                      one source; dest relative to the image root
//	ADD [--checksum=sha256:<hex>] <src>... <dest>          local tar archives are unpacked; URLs must be pinned
//	LABEL k=v ...  |  LABEL k v
//	MAINTAINER <text>
//	ENV k=v ...                                            also the image extension's global env
//	APP <name> <source>...                                 files go to application/apps/<name>/
//	CNI <name> <source>... / CSI <name> <source>...        APP plus label cluster.alpha.sealer.io/kube-cni-<name>="true" (kube-csi-)
//	APPCMDS <app> ["command line"]                         how to install an app; last one wins
//	APPENV <app> k=v ...                                   app env, merged across lines
//	KUBEVERSION <semver range>                             label app.alpha.sealer.io/supported-kube-version
//	LAUNCH ["app", ...]                                    apps to start; last instruction, at most once
//	CMDS ["command line", ...]                             commands to run; last instruction, at most once
//	CMD <command line>                                     deprecated; accumulates into the commands
//
// App sources are local://<path in the build context>, http://… or https://….
// A remote source must be pinned with a URL fragment:
//
//	APP dashboard https://example.com/dashboard.yaml#sha256=<64 hex digits>
//
// The fragment is never sent to the server and is not part of the file name,
// so the real sealer downloads the same file under the same name: the
// Kubefile stays sealer-compatible. ADD uses Docker's form instead:
//
//	ADD --checksum=sha256:<64 hex digits> https://example.com/tool.tar.gz opt/tool.tar.gz
//
// The builder verifies the digest after downloading.
//
// App types are detected exactly as sealer does: helm when a directory source
// holds Chart.yaml, values.yaml and templates (or the sources together name
// all three); shell when every file ends in .sh; kube when every file ends in
// .yaml/.yml; otherwise none, and then APPCMDS is required. Files lists the
// launch files as sealer lists them. Local sources are copied before remote
// ones, as in sealer. A directory source copies its contents.
//
// # Variables
//
// FROM (and its --platform), COPY and ADD sources and destinations, APP/CNI/CSI
// sources, LABEL keys and values, ENV keys and values, ARG defaults and APPENV
// values are expanded Dockerfile-style: $NAME, ${NAME}, ${NAME:-default},
// ${NAME-default}, ${NAME:+alt}, ${NAME+alt}, ${NAME:?message} and
// ${NAME?message}; quotes are removed; the escape character makes the next
// character literal (\$ stays a dollar sign). Values come from ENV first,
// then the built-ins, then ARG. The built-ins are set from the target
// platform and visible everywhere without declaration: ARCH (what sealer
// Kubefiles use: COPY ${ARCH}/bin bin), TARGETARCH, TARGETOS, TARGETVARIANT
// and TARGETPLATFORM. An ARG before FROM is visible in FROM only; declare it
// again after FROM (ARG NAME) to use its value below. --build-arg values
// override ARG defaults and are used verbatim. APPCMDS, CMDS, CMD, LAUNCH,
// MAINTAINER and KUBEVERSION are never expanded: commands run at install time
// and keep their $ for the target's shell. Referencing an undefined variable
// expands to "" and is reported as a warning.
//
// # What differs from sealer v0.11
//
//	Topic                          sealer v0.11                                  cnstack
//	RUN                            runs in a build container (buildah)           error: nothing runs at build time; put the result in the
//	                                                                             build context and COPY it, or run it at install time
//	                                                                             with CMDS/APPCMDS
//	COPY a b dir/                  silently copies only a                        error: one COPY per source
//	COPY/ADD --chown, --chmod,     dropped silently on COPY, passed to           error: files are root-owned, modes come from the
//	--from, other flags            buildah on ADD                                context, multi-stage is not supported
//	ADD https://…                  downloaded unpinned                           requires --checksum=sha256:<hex>
//	APP … https://…                downloaded unpinned                           requires …#sha256=<hex>
//	ARG / --build-arg with "="     the value is split on "=" and breaks          works: everything after the first "=" is the value
//	variables                      only ${ARCH} in COPY sources (others          Dockerfile-style in FROM, COPY, ADD, APP/CNI/CSI sources,
//	                               go to buildah; APP, APPENV never)             LABEL, ENV, ARG, APPENV; TARGET* built-ins
//	ENV values in the extension    raw text split on spaces: quotes kept,        Dockerfile semantics: quotes removed, variables expanded;
//	                               $VARs unexpanded, "ENV k v" left out          "ENV k v" included (with a warning)
//	APPENV entries                 quotes kept; entries without "=" dropped      quotes removed, variables expanded; no "=" is an error
//	lower-case env / cmd / appcmds error / crash / error                         accepted, with a warning that sealer rejects them
//	CMD ["a", "b"]                 brackets stored, fails at install time        error: use CMDS
//	JSON array + trailing text     trailing text ignored                         error
//	FROM x AS y, several FROMs     passed to buildah                             error: multi-stage builds are not supported
//	local:// and COPY paths        relative to the current directory (APP)       relative to the build context; must exist and stay inside
//	                               checked at build time                         it (checked by Evaluate, reported with positions)
//	APP local://./dir file list    "dir/x.yaml" (wrong at run time)              "/x.yaml", as for local://dir
//	app names                      anything                                      no slash, blank, "." or ".." (they become directories)
//	inherited untyped app          needs APPCMDS again in every derived image    inherits its commands
//	APPENV on an inherited app     replaces the base app's env                   AppUpdate.Env is merged over the base env
//	checks                         first error stops the build                   every finding reported, with file:line:col
//
// Other warnings point at things that work but are probably wrong: CMDS in
// whitespace form (every word becomes a command), LAUNCH listing an app twice,
// an app redeclared, APPCMDS given twice, a built-in shadowed by ENV or given
// an ARG default, a Helm chart split into separate sources (its templates/
// directory would be flattened), a KUBEVERSION that is not a semver range.
//
// # The evaluated image
//
// Image.Steps lists, in file order after FROM, what a builder does:
// StepCopy (COPY, ADD, APP, CNI, CSI) puts Sources into Dest with Docker's
// COPY semantics (Unpack marks ADD); StepLabel, StepEnv, StepMaintainer and
// StepArg change the config; StepMeta (APPCMDS, APPENV, LAUNCH, CMDS, CMD)
// changes only the image extension. CNI and CSI give a StepCopy followed by a
// StepLabel; KUBEVERSION gives a StepLabel. Step.Text is the canonical
// expanded instruction, stable across machines and directories, for history
// and cache keys. Image.Apps, AppUpdates, Launch, Env and Labels are the
// extension and config data in final form.
package kubefile
