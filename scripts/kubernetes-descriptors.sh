#!/usr/bin/env bash
# Rebuilds control-plane/src/protobuf/kubernetes.fds, the descriptor set of Kubernetes' own
# .proto files that the API server reads and writes protobuf bodies with.
#
# Usage: scripts/kubernetes-descriptors.sh PROTOS_DIR
# PROTOS_DIR holds Kubernetes' generated.proto files laid out as kube-rs/k8s-pb keeps them
# (k8s-pb-codegen/protos: api/core/v1/generated.proto, apimachinery/pkg/..., packages
# without the k8s.io. prefix); the committed set was made from its Kubernetes 1.36.0 protos.
# Needs protoc (Debian: protobuf-compiler).
set -euo pipefail
protos=${1:?usage: $0 PROTOS_DIR}
out=$(cd "$(dirname "$0")/.." && pwd)/control-plane/src/protobuf/kubernetes.fds
cd "$protos"
files=(
    apimachinery/pkg/runtime/generated.proto
    apimachinery/pkg/apis/meta/v1/generated.proto
    apimachinery/pkg/api/resource/generated.proto
    apimachinery/pkg/util/intstr/generated.proto
    api/autoscaling/v2/generated.proto
    apiextensions-apiserver/pkg/apis/apiextensions/v1/generated.proto
)
for group in core apps batch node storage policy discovery networking coordination certificates \
    rbac authorization authentication autoscaling events scheduling; do
    files+=("api/$group/v1/generated.proto")
done
protoc --include_imports -o "$out" -I . "${files[@]}"
echo "wrote $out"
