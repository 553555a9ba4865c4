package hostile

import (
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Case is one hostile bundle.
type Case struct {
	// File is its name under testdata/hostile/bundles (".tar.zst" ones
	// are zstd-compressed, as `cnstack save --compress zstd` writes).
	File string
	// Defect names the issue 8 defect it pins.
	Defect string
	// What the bundle does.
	What string
	// WantCheck and WantLoad are in the errors of check and load.
	WantCheck, WantLoad string
	// Bundle is its content.
	Bundle Bundle
}

// Zstd reports whether the case is written compressed.
func (c Case) Zstd() bool { return strings.HasSuffix(c.File, ".zst") }

// bombSize is what a bomb's header promises, bombZeros what it carries
// before the archive ends.
const (
	bombSize  = 4 << 30
	bombZeros = 1 << 30
)

// Cases lists every hostile bundle, each derived from the good image.
func Cases() []Case {
	good := NewImage("good")
	other := NewImage("other")
	var out []Case
	add := func(c Case) { out = append(out, c) }

	// §1.2: media types claimed, not derived.
	add(Case{
		File: "mediatype-lie-untagged.tar", Defect: "§1.2",
		What:      "an untagged index.json entry names the good image's manifest as application/octet-stream: the old reachability walk stopped there, and prune deleted the good image's config and layers",
		WantCheck: "application/octet-stream", WantLoad: "application/octet-stream",
		Bundle: Bundle{Index: []ocispec.Descriptor{{MediaType: "application/octet-stream", Digest: good.Manifest.Desc.Digest, Size: good.Manifest.Desc.Size}},
			Blobs: []Blob{good.Manifest}, Meta: true, Sums: true},
	})
	lieIdx := indexOf(ocispec.Descriptor{MediaType: "application/octet-stream", Digest: good.Manifest.Desc.Digest, Size: good.Manifest.Desc.Size})
	add(Case{
		File: "mediatype-lie-tagged.tar", Defect: "§1.2",
		What:      "a tagged index names the good manifest as application/octet-stream and the bundle leaves its config and layer out: the old load tagged an image whose blobs were absent",
		WantCheck: "is named as application/octet-stream", WantLoad: "is named as application/octet-stream",
		Bundle: Bundle{Index: []ocispec.Descriptor{Named(lieIdx.Desc, "hostile.test/evil:v1")}, Blobs: []Blob{lieIdx, good.Manifest}, Meta: true, Sums: true},
	})
	add(Case{
		File: "config-as-manifest.tar", Defect: "§1.2",
		What:      "index.json names the config blob as an image manifest",
		WantCheck: "but the blob is not a manifest", WantLoad: "but the blob is not a manifest",
		Bundle: Bundle{Index: []ocispec.Descriptor{Named(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: good.Config.Desc.Digest, Size: good.Config.Desc.Size}, "hostile.test/evil:v1")},
			Blobs: good.Blobs(), Meta: true, Sums: true},
	})

	// §1.6: sizes of 0 or less.
	add(Case{
		File: "zero-size.tar", Defect: "§1.6",
		What:      "index.json gives the manifest a size of 0",
		WantCheck: "has size 0", WantLoad: "has size 0",
		Bundle: Bundle{Index: []ocispec.Descriptor{Named(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: good.Manifest.Desc.Digest, Size: 0}, "hostile.test/evil:v1")},
			Blobs: good.Blobs(), Meta: true, Sums: true},
	})
	neg := good.Layer.Desc
	neg.Size = -1
	negManifest := ManifestOf(good.Config.Desc, neg)
	add(Case{
		File: "negative-size.tar", Defect: "§1.6",
		What:      "the manifest gives its layer a size of -1",
		WantCheck: "has size -1", WantLoad: "has size -1",
		Bundle: Bundle{Index: []ocispec.Descriptor{Named(negManifest.Desc, "hostile.test/evil:v1")}, Blobs: []Blob{negManifest, good.Config, good.Layer}, Meta: true, Sums: true},
	})

	// §1.7: check and load disagreed.
	add(Case{
		File: "long-name.tar.zst", Defect: "§1.7",
		What:      "a 200 KB reference name",
		WantCheck: "over the 1024-byte limit", WantLoad: "over the 1024-byte limit",
		Bundle: Bundle{Index: []ocispec.Descriptor{Named(good.Manifest.Desc, "hostile.test/"+strings.Repeat("a", 200<<10)+":v1")}, Blobs: good.Blobs(), Meta: true, Sums: true},
	})
	add(Case{
		File: "ansi-name.tar", Defect: "§1.7",
		What:      "a reference name carrying ANSI escape sequences (clear screen, red)",
		WantCheck: "invalid image reference", WantLoad: "invalid image reference",
		Bundle: Bundle{Index: []ocispec.Descriptor{Named(good.Manifest.Desc, "hostile.test/good:\x1b[2J\x1b[31mv1")}, Blobs: good.Blobs(), Meta: true, Sums: true},
	})
	add(Case{
		File: "duplicate-ref.tar", Defect: "§1.7",
		What:      "index.json names one reference twice, for two images (the old load retagged silently)",
		WantCheck: "twice", WantLoad: "twice",
		Bundle: Bundle{Index: []ocispec.Descriptor{Named(good.Manifest.Desc, "hostile.test/dup:v1"), Named(other.Manifest.Desc, "hostile.test/dup:v1")},
			Blobs: append(good.Blobs(), other.Blobs()...), Meta: true, Sums: true},
	})
	var many []ocispec.Descriptor
	for i := 0; i < 2000; i++ {
		many = append(many, good.Layer.Desc)
	}
	manyManifest := ManifestOf(good.Config.Desc, many...)
	add(Case{
		File: "many-layers.tar.zst", Defect: "§1.7",
		What:      "a manifest with 2000 layers (the limit is 1000; the old load took a million)",
		WantCheck: "2000 layers, over the limit", WantLoad: "2000 layers, over the limit",
		Bundle: Bundle{Index: []ocispec.Descriptor{Named(manyManifest.Desc, "hostile.test/evil:v1")}, Blobs: []Blob{manyManifest, good.Config, good.Layer}, Meta: true, Sums: true},
	})
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: good.Config.Desc, Layers: []ocispec.Descriptor{good.Layer.Desc},
		Annotations: map[string]string{"padding": strings.Repeat("x", 5<<20)}}
	m.SchemaVersion = 2
	huge := blob(ocispec.MediaTypeImageManifest, mustJSON(m))
	add(Case{
		File: "huge-manifest.tar.zst", Defect: "§1.7",
		What:      "a 5 MiB manifest (the limit is 4 MiB)",
		WantCheck: "4194304", WantLoad: "4194304",
		Bundle: Bundle{Index: []ocispec.Descriptor{Named(huge.Desc, "hostile.test/evil:v1")}, Blobs: []Blob{huge, good.Config, good.Layer}, Meta: true, Sums: true},
	})
	add(Case{
		File: "sums-mismatch.tar", Defect: "§1.7",
		What:      "SHA256SUMS lists a wrong sha256 for index.json (the old load ignored SHA256SUMS)",
		WantCheck: "index.json does not match SHA256SUMS", WantLoad: "index.json does not match SHA256SUMS",
		Bundle: func() Bundle {
			b := Good(good, GoodRef)
			b.EditSums = func(lines []string) []string {
				for i, l := range lines {
					if strings.HasSuffix(l, "  index.json") {
						lines[i] = strings.Repeat("0", 64) + "  index.json"
					}
				}
				return lines
			}
			return b
		}(),
	})
	add(Case{
		File: "sums-unlisted.tar", Defect: "§1.7",
		What:      "a blob SHA256SUMS does not list",
		WantCheck: "is not listed in SHA256SUMS", WantLoad: "is not listed in SHA256SUMS",
		Bundle: func() Bundle {
			b := Good(good, GoodRef)
			b.EditSums = func(lines []string) []string {
				var out []string
				for _, l := range lines {
					if !strings.HasSuffix(l, good.Layer.Desc.Digest.Encoded()) {
						out = append(out, l)
					}
				}
				return out
			}
			return b
		}(),
	})
	add(Case{
		File: "sums-missing.tar", Defect: "§1.7",
		What:      "a cnstack bundle (cnstack-bundle.json) without SHA256SUMS",
		WantCheck: "SHA256SUMS is missing", WantLoad: "SHA256SUMS is missing",
		Bundle: Bundle{Index: []ocispec.Descriptor{Named(good.Manifest.Desc, GoodRef)}, Blobs: good.Blobs(), Meta: true},
	})

	// §1.9: disk bombs.
	junk := digest.FromString("a blob no manifest names")
	add(Case{
		File: "zstd-bomb.tar.zst", Defect: "§1.9",
		What: fmt.Sprintf("a %d KB-ish zstd stream whose blob header promises %d GiB and whose content is %d GiB of zeros before the archive ends; the old load left it all in a .partial",
			32, bombSize>>30, bombZeros>>30),
		WantCheck: "decompression bomb", WantLoad: "decompression bomb",
		Bundle: Bundle{Index: []ocispec.Descriptor{Named(good.Manifest.Desc, GoodRef)}, Blobs: good.Blobs(),
			Raw: []RawEntry{{Name: "blobs/sha256/" + junk.Encoded(), Size: bombSize, Content: Zeros(bombZeros), Short: true}}},
	})
	add(Case{
		File: "declared-size-bomb.tar.zst", Defect: "§1.9",
		What:      "the layer's archive entry promises 4 GiB where the manifest (read first) declares its real size",
		WantCheck: "decompression bomb", WantLoad: "its descriptor says",
		Bundle: Bundle{Index: []ocispec.Descriptor{Named(good.Manifest.Desc, GoodRef)}, Blobs: []Blob{good.Manifest, good.Config},
			Raw: []RawEntry{{Name: "blobs/sha256/" + good.Layer.Desc.Digest.Encoded(), Size: bombSize, Content: Zeros(bombZeros), Short: true}}},
	})
	last := good.Blobs()[0] // the blob written last: all are small, so by digest
	for _, b := range good.Blobs() {
		if b.Desc.Digest > last.Desc.Digest {
			last = b
		}
	}
	add(Case{
		File: "truncated.tar", Defect: "§1.9",
		What:      "the good bundle cut in the middle of its last blob",
		WantCheck: "truncated", WantLoad: "truncated",
		Bundle: func() Bundle {
			b := Good(good, GoodRef)
			size, _ := b.WriteTo(io.Discard)
			// The end: two 512-byte end blocks, the last blob padded to 512
			// bytes; cut in the middle of that blob.
			padded := (len(last.Data) + 511) / 512 * 512
			b.Truncate = int(size) - 1024 - padded + len(last.Data)/2
			return b
		}(),
	})
	return out
}

func indexOf(children ...ocispec.Descriptor) Blob {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: children}
	idx.SchemaVersion = 2
	return blob(ocispec.MediaTypeImageIndex, mustJSON(idx))
}
