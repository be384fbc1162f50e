# perftest (ib_write_bw, ib_read_lat, …): the RDMA bandwidth/latency tools used to measure the
# rails (per rail and both together). Not in nixpkgs. The source is the upstream release Debian ships; its hash is the one in
# Debian's signed source description (perftest_4.5+0.17-1.dsc, Checksums-Sha256).
{ lib, stdenv, fetchurl, autoreconfHook, rdma-core, pciutils }:

stdenv.mkDerivation (finalAttrs: {
  pname = "perftest";
  version = "4.5-0.17";

  src = fetchurl {
    url = "mirror://debian/pool/main/p/perftest/perftest_4.5+0.17.orig.tar.gz";
    hash = "sha256-hvx1ryk6dax+Ff7XzFrfYo5mDYmSg1wKyLkdUAtjql8=";
  };

  nativeBuildInputs = [ autoreconfHook ];
  buildInputs = [ rdma-core pciutils ];

  enableParallelBuilding = true;

  meta = {
    description = "RDMA performance tests over verbs: ib_write_bw, ib_read_bw, ib_send_lat, …";
    homepage = "https://github.com/linux-rdma/perftest";
    license = with lib.licenses; [ bsd2 gpl2Only ];
    platforms = lib.platforms.linux;
    mainProgram = "ib_write_bw";
  };
})
