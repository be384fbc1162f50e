{
  description = "sparkctl: reproducible multi-node vLLM on NVIDIA DGX Spark over RoCE";

  # Not locked in the repository (this project's CI has no Nix able to lock it); the first
  # `nix flake lock` or `nix build` writes flake.lock. See docs/cluster.md.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs = { self, nixpkgs }:
    let
      lib = nixpkgs.lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      pkgsFor = system: import nixpkgs { inherit system; overlays = [ self.overlays.default ]; };
      forAllSystems = f: lib.genAttrs systems (system: f (pkgsFor system));

      sparkLib = import ./nix/lib.nix;
      exampleFile = ./examples/cluster.toml;

      # The Cargo workspace without build outputs.
      src = lib.cleanSourceWith {
        src = lib.cleanSource ./.;
        filter = path: type: !(type == "directory" && baseNameOf path == "target");
      };
      epoch = self.lastModified or 1;
      # The image needs its base pinned (digest + NAR hash) first: until then its packages are
      # left out, so `nix flake check` stays green (nix/packages/image-pins.nix says how).
      # The base reference is the recipe's own `base.ref` (one source of truth), unless overridden.
      recipeRef = (builtins.fromTOML (builtins.readFile ./images/vllm-spark.toml)).base.ref;
      pins = let p = import ./nix/packages/image-pins.nix; in p // { ref = if p.ref != null then p.ref else recipeRef; };
      imagePinned = pins.narHash != null && !(lib.hasSuffix "@sha256:${lib.fixedWidthString 64 "0" ""}" pins.ref);
      platformOf = system: { x86_64-linux = "linux/amd64"; aarch64-linux = "linux/arm64"; }.${system};

      # The shared test vectors, evaluated at `nix flake check` time as well as in CI.
      vectors = [
        { toml = ./examples/cluster.toml; json = ./crates/cluster/tests/vectors/two-sparks.json; }
        { toml = ./crates/cluster/tests/vectors/two-sparks-ray.toml; json = ./crates/cluster/tests/vectors/two-sparks-ray.json; }
        { toml = ./crates/cluster/tests/vectors/three-nodes-native.toml; json = ./crates/cluster/tests/vectors/three-nodes-native.json; }
      ];
    in
    {
      overlays.default = final: prev: {
        perftest = final.callPackage ./nix/packages/perftest.nix { };
        sparkctl = final.callPackage ./nix/packages/sparkctl.nix { inherit src; };
        spark-entrypoint = final.callPackage ./nix/packages/sparkctl.nix {
          inherit src;
          crate = "entrypoint";
          binary = "spark-entrypoint";
        };
      };

      packages = forAllSystems (pkgs:
        let
          system = pkgs.stdenv.hostPlatform.system;
          self' = self.packages.${system};
        in
        {
          default = pkgs.sparkctl;
          inherit (pkgs) sparkctl perftest;
          # Static (musl) entrypoints for the image, for both platforms from either build machine.
          spark-entrypoint-x86_64 = pkgs.pkgsCross.musl64.pkgsStatic.spark-entrypoint;
          spark-entrypoint-aarch64 = pkgs.pkgsCross.aarch64-multiplatform-musl.pkgsStatic.spark-entrypoint;
        }
        // lib.optionalAttrs imagePinned {
          vllm-spark-base = pkgs.callPackage ./nix/packages/base.nix { inherit pins; };
          vllm-spark-image = pkgs.callPackage ./nix/packages/image.nix {
            inherit src epoch;
            # Named as the example's nodes run it, so `container.imageFile` loads what `image` names.
            imageName = (sparkLib.readCluster exampleFile).container.image;
            base = self'.vllm-spark-base;
            platform = platformOf system;
            entrypoint = if system == "aarch64-linux" then self'.spark-entrypoint-aarch64 else self'.spark-entrypoint-x86_64;
          };
        });

      nixosModules.default = ./nix/default.nix;

      # One example machine per node of examples/cluster.toml: `nixos-rebuild switch --flake .#spark-2`.
      # Its hardware part (the NVIDIA driver, open kernel module, unfree driver allowed by name)
      # and the token's path are in nix/examples/spark-node.nix.
      nixosConfigurations = lib.genAttrs (sparkLib.nodeNames (sparkLib.readCluster exampleFile)) (name:
        lib.nixosSystem {
          modules = [
            self.nixosModules.default
            ./nix/examples/spark-node.nix
            {
              nixpkgs.hostPlatform = "aarch64-linux";
              nixpkgs.overlays = [ self.overlays.default ];
              networking.hostName = name;
              services.spark-cluster = {
                enable = true;
                clusterFile = exampleFile;
              };
            }
          ];
        });

      checks = forAllSystems (pkgs:
        let
          system = pkgs.stdenv.hostPlatform.system;
          vmArgs = { inherit pkgs; module = self.nixosModules.default; };
          vectorsAgree = lib.all (v: sparkLib.clusterPlans (sparkLib.readCluster v.toml) == lib.importJSON v.json) vectors;
        in
        {
          eval-vectors =
            assert lib.assertMsg vectorsAgree "nix/lib.nix disagrees with the shared vectors in crates/cluster/tests/vectors";
            pkgs.runCommand "spark-cluster-eval-vectors" { } "touch $out";
          vm-rails = import ./vm-tests/rails.nix vmArgs;
          vm-rdma = import ./vm-tests/rdma.nix vmArgs;
          vm-container = import ./vm-tests/container.nix (vmArgs // {
            inherit epoch;
            sparkctl = pkgs.sparkctl;
            entrypoint = if system == "aarch64-linux"
              then self.packages.${system}.spark-entrypoint-aarch64
              else self.packages.${system}.spark-entrypoint-x86_64;
          });
        }
        # The example machines are aarch64 (Sparks): built where that is native.
        // lib.optionalAttrs (system == "aarch64-linux")
          (lib.mapAttrs' (name: machine: lib.nameValuePair "nixos-${name}" machine.config.system.build.toplevel) self.nixosConfigurations));

      formatter = forAllSystems (pkgs: pkgs.nixfmt);
    };
}
