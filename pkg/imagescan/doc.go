// Package imagescan finds every container image reference a cluster image's
// rootfs will ask for, and where each one comes from. It never pulls and
// never touches the network.
//
// Sources, in the layout sealer gives them (sealer-format.md §2.5, §3.1):
//
//   - manifests/imageList: one reference per line (see ParseImageList).
//   - manifests/**: *.yaml, *.yml and *.json files, and *.tmpl files rendered
//     as `sealer run` renders them (Go text/template over the image env, funcs
//     b64enc and b64dec, a missing key printed as "<no value>"). A file with a
//     sibling <name>.tmpl is skipped: `sealer run` overwrites it.
//   - charts/**: every directory holding Chart.yaml is a chart (sealer also
//     wants values.yaml and templates/; Helm does not, and umbrella charts have
//     neither), and every .tgz outside a chart is a packaged chart. Charts are
//     rendered with Helm v3's engine as `helm install` would: default values
//     merged with Options.ChartValues, conditions, tags and import-values
//     processed, release "dryrun" in namespace "default", hooks and test hooks
//     included, NOTES.txt and partials left out. The chart's own *.tmpl files
//     are rendered with the env first, as `sealer run` does on disk.
//   - application/apps/<name>/: a chart directory is rendered as a chart;
//     otherwise its manifests are scanned (and charts inside it rendered), with
//     *.tmpl rendered over the app's APPENV laid over the image env.
//
// YAML is parsed structurally, one document at a time. A reference is the
// value of a key exactly named "image" (a string, or a map with repository
// and optional registry, tag and digest, or an image volume's reference), an
// "image" next to "repository" and "version" (the NVIDIA operator layout), or
// the value of a RELATED_IMAGE_* env var. Keys that merely end in "image",
// labels, annotations, strings that contain YAML, and CustomResourceDefinition
// schemas are not references. What cannot be used is a Warning with its
// provenance, never silently dropped.
package imagescan
