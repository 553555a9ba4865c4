// A stand-in for the Tencent Cloud VPC SDK, which the Go module proxy refuses to serve
// (403 "This module version is not available"). flanneld links it only for its
// tencent-vpc backend; with this stub that backend fails at start with a clear error,
// and every other backend (vxlan, host-gw, ...) is unaffected.
module github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc

go 1.26.0
