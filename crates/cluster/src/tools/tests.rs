//! Every fixture of the fabric tools parses to the values the paste shows. Each test names its
//! fixture; synthetic inputs (where no real output was found) say so.

use super::*;
use crate::test_util::fixture;
use std::net::Ipv4Addr;

// ---- ethtool ----

#[test]
fn ethtool_bond0_2x100g_reports_200000_and_link_yes() {
    let e = ethtool::parse(&fixture("ethtool/bond0-2x100g-200000-link-yes.txt"));
    assert_eq!(e.links.len(), 1, "{e:#?}");
    let l = e.link("bond0").unwrap();
    assert_eq!((l.speed_mbps, l.link_detected, l.duplex.as_deref()), (Some(200_000), Some(true), Some("Full")));
    assert!(l.supported_modes.is_empty() && l.advertised_modes.is_empty(), "`Not reported` is no mode");
    assert!(!l.truncated);
}

#[test]
fn ethtool_dgx_spark_grep_speed_200000() {
    let e = ethtool::parse(&fixture("ethtool/dgx-spark-grep-speed-200000.txt"));
    let l = e.link("enp1s0f1np1").unwrap();
    assert_eq!(l.speed_mbps, Some(200_000));
    assert_eq!(l.link_detected, None);
    assert!(!l.truncated, "a grep is not a truncated block");
}

#[test]
fn ethtool_dgx_spark_switch_speed_100000_then_200000_keeps_both_states() {
    let e = ethtool::parse(&fixture("ethtool/dgx-spark-switch-speed-100000-then-200000.txt"));
    let speeds: Vec<(Option<&str>, Option<u64>)> = e.links.iter().map(|l| (l.interface.as_deref(), l.speed_mbps)).collect();
    assert_eq!(
        speeds,
        [
            (Some("enp1s0f1np1"), Some(100_000)),
            (Some("enP2p1s0f1np1"), Some(100_000)),
            (Some("enp1s0f1np1"), Some(200_000)),
            (Some("enP2p1s0f1np1"), Some(200_000))
        ]
    );
    assert_eq!(e.link("enP2p1s0f1np1").unwrap().speed_mbps, Some(200_000), "the latest block wins");
}

#[test]
fn ethtool_nonroot_minimal_reports_the_permission_line() {
    let e = ethtool::parse(&fixture("ethtool/nonroot-minimal-operation-not-permitted.txt"));
    assert_eq!(e.links.len(), 2);
    for (l, name) in e.links.iter().zip(["enp24s0f0", "enp24s0f1"]) {
        assert_eq!(l.interface.as_deref(), Some(name));
        assert_eq!((l.speed_mbps, l.link_detected), (None, Some(true)));
        assert_eq!(l.notes, ["Cannot get wake-on-lan settings: Operation not permitted"]);
    }
}

#[test]
fn ethtool_duplicated_modes_block_merges_instead_of_overwriting() {
    // Synthetic: a CX-7-like block whose `Supported link modes` appears twice (pastes repeat it).
    let text = "Settings for enp1s0f1np1:\n\tSupported link modes:   100000baseCR4/Full\n\t                        200000baseCR4/Full\n\tLanes: 4\n\tSpeed: 200000Mb/s\n\tSupported link modes:   25000baseCR/Full\n\tLink detected: yes\n";
    let l = ethtool::parse(text).links.remove(0);
    assert_eq!(l.supported_modes, ["100000baseCR4/Full", "200000baseCR4/Full", "25000baseCR/Full"]);
    assert_eq!((l.lanes, l.speed_mbps), (Some(4), Some(200_000)));
    assert!(l.notes.iter().any(|n| n.contains("appears twice")), "{:?}", l.notes);
}

#[test]
fn ethtool_block_cut_before_link_detected_is_truncated() {
    let l = ethtool::parse("Settings for eth0:\n\tSpeed: Unknown!\n\tDuplex: Unkn").links.remove(0);
    assert!(l.truncated);
    assert_eq!(l.speed_mbps, None);
}

// ---- ibdev2netdev ----

#[test]
fn ibdev2netdev_dgx_spark_single_cable_2up_2down() {
    let r = ibdev2netdev::parse(&fixture("ibdev2netdev/dgx-spark-single-cable-2up-2down.txt"));
    let up: Vec<(&str, &str)> = r.links.iter().filter(|l| l.up).map(|l| (l.rdma_device.as_str(), l.netdev.as_str())).collect();
    assert_eq!(up, [("rocep1s0f1", "enp1s0f1np1"), ("roceP2p1s0f1", "enP2p1s0f1np1")]);
    assert_eq!(r.links.len(), 4);
    assert!(r.notes.is_empty());
}

#[test]
fn ibdev2netdev_dgx_spark_switch_port1_up() {
    let r = ibdev2netdev::parse(&fixture("ibdev2netdev/dgx-spark-switch-port1-up.txt"));
    assert_eq!(r.links.iter().map(|l| l.up).collect::<Vec<_>>(), [false, true, false, true]);
    assert!(r.links.iter().all(|l| l.port == 1));
}

#[test]
fn ibdev2netdev_dgx_spark_all_4_up_with_annotations() {
    let r = ibdev2netdev::parse(&fixture("ibdev2netdev/dgx-spark-all-4-up.txt"));
    assert_eq!(r.links.len(), 4);
    assert!(r.links.iter().all(|l| l.up), "trailing annotations do not hide (Up)");
    assert_eq!(r.links[2].netdev, "enP2p1s0f0np0");
}

#[test]
fn ibdev2netdev_state_glued_to_the_next_command_reads_up() {
    // Synthetic, in the shape of pastes where the next prompt or note follows the state
    // without a newline (no such real paste is in fixtures/).
    let r = ibdev2netdev::parse("rocep1s0f0 port 1 ==> enp1s0f0np0 (Up)# ibv_devinfo\nroceP2p1s0f0 port 1 ==> enP2p1s0f0np0 (Down)nvidia@spark:~$\n");
    assert_eq!(r.links.iter().map(|l| (l.netdev.as_str(), l.up)).collect::<Vec<_>>(), [("enp1s0f0np0", true), ("enP2p1s0f0np0", false)]);
}

#[test]
fn ibdev2netdev_verbose_lines_give_pci_state_and_firmware() {
    // Synthetic in the `ibdev2netdev -v` format (PCI, device, board, description, fw, port state).
    let text = "0000:01:00.1 rocep1s0f1 (MT4129 - NVD0000000087) NVIDIA ConnectX-7 HHHL Adapter Card fw 28.45.4028 port 1 (ACTIVE) ==> enp1s0f1np1 (Up)\n\
                0002:01:00.0 roceP2p1s0f0 (MT4129 - NVD0000000087) NVIDIA ConnectX-7 HHHL Adapter Card fw 28.45.4028 port 1 (DOWN  ) ==> enP2p1s0f0np0 (Down)\n";
    let r = ibdev2netdev::parse(text);
    assert_eq!(r.links.len(), 2, "{r:#?}");
    let a = &r.links[0];
    assert_eq!(
        (a.pci.as_deref(), a.rdma_device.as_str(), a.port, a.port_state.as_deref(), a.fw.as_deref()),
        (Some("0000:01:00.1"), "rocep1s0f1", 1, Some("ACTIVE"), Some("28.45.4028"))
    );
    assert_eq!((r.links[1].netdev.as_str(), r.links[1].up), ("enP2p1s0f0np0", false));
}

#[test]
fn ibdev2netdev_unreadable_link_lines_are_reported() {
    let r = ibdev2netdev::parse("rocep1s0f1 port x ==> enp1s0f1np1 (Up)\n==>\n");
    assert!(r.links.is_empty());
    assert_eq!(r.notes.len(), 2);
}

// ---- ibv_devinfo ----

#[test]
fn ibv_devinfo_dgx_spark_4_hcas_2_active_2_down() {
    let d = ibv_devinfo::parse(&fixture("ibv_devinfo/dgx-spark-4-hcas-2-active-2-down-roce.txt"));
    assert_eq!(d.hcas.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(), ["rocep1s0f0", "rocep1s0f1", "roceP2p1s0f0", "roceP2p1s0f1"]);
    for h in &d.hcas {
        assert_eq!((h.fw_ver.as_deref(), h.vendor_part_id, h.board_id.as_deref()), (Some("28.45.4028"), Some(4129), Some("NVD0000000087")));
        assert_eq!(h.sys_image_guid.as_deref(), Some("4821:0b03:0096:04cb"));
    }
    let p = &d.hca("rocep1s0f0").unwrap().ports[0];
    assert_eq!(
        (p.number, p.state.as_deref(), p.active_mtu, p.max_mtu, p.link_layer.as_deref()),
        (Some(1), Some("PORT_ACTIVE"), Some(4096), Some(4096), Some("Ethernet"))
    );
    let down = &d.hca("rocep1s0f1").unwrap().ports[0];
    assert_eq!((down.state.as_deref(), down.active_mtu), (Some("PORT_DOWN"), Some(1024)));
    assert!(!d.truncated);
}

#[test]
fn ibv_devinfo_v_cx6_gid_table_with_spaces_and_device_list() {
    let d = ibv_devinfo::parse(&fixture("ibv_devinfo/ibv_devinfo-v-cx6-roce-gid-table-spaces.txt"));
    assert_eq!(d.listed, ["mlx5_0", "mlx5_1", "irdma0", "irdma1"]);
    let h = d.hca("mlx5_0").unwrap();
    assert_eq!((h.fw_ver.as_deref(), h.vendor_part_id), (Some("20.24.4702"), Some(4123)));
    let p = &h.ports[0];
    assert_eq!(
        (p.state.as_deref(), p.active_mtu, p.active_speed.as_deref(), p.phys_state.as_deref()),
        (Some("PORT_ACTIVE"), Some(4096), Some("25.0 Gbps (32)"), Some("LINK_UP"))
    );
    assert_eq!(p.gids.len(), 4);
    assert_eq!(p.roce_v2_gid(Ipv4Addr::new(192, 168, 1, 11)), Some(3));
    assert_eq!(p.gids[2].ipv4, Some(Ipv4Addr::new(192, 168, 1, 11)), "the v1 GID in hex groups maps to the same address");
    assert_eq!(p.gids[2].roce, Some(ibv_devinfo::RoceVersion::V1));
}

#[test]
fn ibv_devinfo_v_gid_lines_only_grep() {
    let d = ibv_devinfo::parse(&fixture("ibv_devinfo/ibv_devinfo-v-gid-lines-only-grep.txt"));
    assert_eq!(d.hcas.len(), 1);
    let p = &d.hcas[0].ports[0];
    assert_eq!(p.gids.iter().map(|g| g.index).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(p.roce_v2_gid(Ipv4Addr::new(10, 0, 0, 1)), Some(3));
    assert!(d.notes.iter().any(|n| n.contains("before any `hca_id`")), "{:?}", d.notes);
}

#[test]
fn ibv_devinfo_v_bnxt_gid_format_with_elided_lines() {
    let d = ibv_devinfo::parse(&fixture("ibv_devinfo/ibv_devinfo-v-bnxt-gid-format-proposal-2020.txt"));
    let h = d.hca("bnxt_re2").unwrap();
    assert_eq!(h.fw_ver.as_deref(), Some("216.0.220.0"));
    let p = &h.ports[0];
    assert_eq!((p.number, p.phys_state.as_deref()), (None, Some("LINK_UP")));
    assert_eq!(p.roce_v2_gid(Ipv4Addr::new(192, 170, 1, 101)), Some(3));
    assert_eq!(p.gids[1].roce, Some(ibv_devinfo::RoceVersion::V2));
    assert!(d.notes.iter().any(|n| n.contains("elided")), "{:?}", d.notes);
}

#[test]
fn ibv_devinfo_soft_roce_rxe0_without_board_id() {
    let d = ibv_devinfo::parse(&fixture("ibv_devinfo/soft-roce-rxe0-no-board-id.txt"));
    let h = d.hca("rxe0").unwrap();
    assert_eq!((h.board_id.as_deref(), h.vendor_part_id, h.vendor_id.as_deref()), (None, Some(0), Some("0x0000")));
    assert_eq!((h.ports[0].active_mtu, h.ports[0].link_layer.as_deref()), (Some(1024), Some("Ethernet")));
}

#[test]
fn ibv_devinfo_cut_in_a_port_is_truncated() {
    let text = fixture("ibv_devinfo/dgx-spark-4-hcas-2-active-2-down-roce.txt");
    let cut = &text[..text.find("link_layer").unwrap()];
    let d = ibv_devinfo::parse(cut);
    assert!(d.truncated, "{d:#?}");
    assert_eq!(d.hcas.len(), 1);
}

// ---- perftest ----

#[test]
fn perftest_ib_write_bw_dgx_spark_client_4qp_rdmacm_111_71_gbits() {
    let p = perftest::parse(&fixture("perftest/ib_write_bw-dgx-spark-client-4qp-rdmacm-gbits.txt"));
    assert_eq!(p.test.as_deref(), Some("RDMA_Write BW Test"));
    assert_eq!((p.device.as_deref(), p.qps, p.mtu, p.link_type.as_deref(), p.rdma_cm), (Some("rocep1s0f1"), Some(4), Some(1024), Some("IB"), Some(true)));
    assert_eq!(p.data_exchange.as_deref(), Some("rdma_cm"));
    assert_eq!(p.bw_rows.len(), 1);
    assert_eq!((p.bw_average_gbps(), p.bw_peak_gbps()), (Some(111.71), Some(111.72)));
    assert_eq!(p.bw_rows[0].msg_rate_mpps, 0.213070);
    assert!(p.ok() && !p.truncated && p.warnings.is_empty(), "{p:#?}");
}

#[test]
fn perftest_ib_write_lat_dgx_spark_client_rdmacm() {
    let p = perftest::parse(&fixture("perftest/ib_write_lat-dgx-spark-client-rdmacm.txt"));
    assert_eq!(p.test.as_deref(), Some("RDMA_Write Latency Test"));
    let r = &p.lat_rows[0];
    assert_eq!((r.bytes, r.iterations, r.t_min, r.t_max, r.t_typical), (2, 1000, 1.42, 1.93, 1.47));
    assert_eq!((r.t_avg, r.p99, r.p99_9), (Some(1.47), Some(1.57), Some(1.93)));
    assert_eq!(p.lat_typical_us(), Some(1.47));
    assert!(p.ok() && !p.truncated);
}

#[test]
fn perftest_server_mbsec_without_report_gbits_converts_to_gbps() {
    let p = perftest::parse(&fixture("perftest/ib_write_bw-roce-server-mbsec-no-report-gbits.txt"));
    assert!(p.server);
    assert_eq!(
        (p.device.as_deref(), p.gid_index, p.mtu, p.link_type.as_deref(), p.rdma_cm),
        (Some("mlx5_3"), Some(2), Some(4096), Some("Ethernet"), Some(false))
    );
    assert_eq!(p.unit, Some(perftest::BwUnit::MebibytePerSec));
    assert_eq!(p.bw_rows[0].average, 96.25);
    let gbps = p.bw_average_gbps().unwrap();
    assert!((gbps - 0.8074).abs() < 0.001, "{gbps}");
}

#[test]
fn perftest_gpudirect_sweep_92g_reads_the_largest_message() {
    let p = perftest::parse(&fixture("perftest/ib_write_bw-roce-gpudirect-client-sweep-92g-gpu-operator-doc.txt"));
    assert_eq!(p.bw_rows.len(), 23);
    assert_eq!((p.gid_index, p.mtu), (Some(5), Some(1024)));
    assert_eq!(p.bw_average_gbps(), Some(92.39));
    assert!(p.ok() && !p.truncated, "{p:#?}");
}

#[test]
fn perftest_bidir_sweep_204g_rocm_doc() {
    let p = perftest::parse(&fixture("perftest/ib_write_bw-roce-bidir-all-sizes-sweep-rocm-doc.txt"));
    assert_eq!(p.test.as_deref(), Some("RDMA_Write Bidirectional BW Test"));
    assert_eq!((p.gid_index, p.mtu, p.qps), (Some(3), Some(4096), Some(1)));
    assert_eq!(p.bw_rows.first().unwrap().peak, 0.142947);
    assert_eq!(p.bw_average_gbps(), Some(204.59));
}

#[test]
fn perftest_new_server_with_connected_and_cpu_lines_ionic() {
    let p = perftest::parse(&fixture("perftest/ib_write_bw-server-new-perftest-connected-completed-lines-ionic.txt"));
    assert!(p.server);
    assert_eq!((p.device.as_deref(), p.qps, p.gid_index), (Some("ionic_7"), Some(4), Some(1)));
    assert_eq!(p.bw_average_gbps(), Some(779.21));
    assert!(p.warnings.iter().any(|w| w.starts_with("Connected:")), "{:?}", p.warnings);
    assert!(p.ok());
}

#[test]
fn perftest_couldnt_connect_is_an_error() {
    let p = perftest::parse(&fixture("perftest/ib_write_bw-client-couldnt-connect-socket-init.txt"));
    assert!(!p.ok());
    assert_eq!(p.errors.len(), 2);
    assert_eq!(p.errors[0], "Couldn't connect to 192.168.125.211:18515");
    assert!(!p.truncated, "an error explains the missing table");
}

#[test]
fn perftest_failed_modify_qp_rtr_is_an_error() {
    let p = perftest::parse(&fixture("perftest/ib_write_bw-failed-modify-qp-rtr.txt"));
    assert_eq!(p.errors.len(), 4);
    assert!(p.errors[0].starts_with("Failed to modify QP 122273 to RTR"));
}

#[test]
fn perftest_rdmacm_failure_server_and_client() {
    let p = perftest::parse(&fixture("perftest/ib_write_bw-rdmacm-failure-server-and-client.txt"));
    assert!(p.errors.iter().any(|e| e.contains("Couldn't read remote address")));
    assert!(p.errors.iter().any(|e| e == "Failed to modify QP to RTS"));
    assert!(!p.ok());
}

#[test]
fn perftest_peak_not_measured_and_warning_between_header_and_table() {
    // Synthetic: the `--run_infinitely` note and a warning line, around the real DGX Spark table.
    let real = fixture("perftest/ib_write_bw-dgx-spark-client-4qp-rdmacm-gbits.txt");
    let text =
        real.replacen(" #bytes", " Requested mtu is higher than active mtu \n Changing to active mtu - 3\n BW peak won't be measured in this run.\n #bytes", 1);
    let p = perftest::parse(&text);
    assert!(p.peak_not_measured);
    assert_eq!(p.bw_peak_gbps(), None);
    assert_eq!(p.bw_average_gbps(), Some(111.71));
    assert_eq!(p.warnings, ["Requested mtu is higher than active mtu", "Changing to active mtu - 3"]);
}

#[test]
fn perftest_table_cut_short_is_truncated() {
    let real = fixture("perftest/ib_write_bw-roce-gpudirect-client-sweep-92g-gpu-operator-doc.txt");
    let cut = &real[..real.find("4096       5000").unwrap()];
    let p = perftest::parse(cut);
    assert!(p.truncated);
    assert_eq!(p.bw_rows.len(), 11);
    let header_only = &real[..real.find("local address").unwrap()];
    assert!(perftest::parse(header_only).truncated);
}

// ---- ray status ----

#[test]
fn ray_status_new_format_active_total_usage_no_gpu() {
    let s = ray_status::parse(&fixture("ray/ray-status-new-format-active-total-usage-no-gpu.txt"));
    assert_eq!(s.nodes, 1);
    assert_eq!((s.total("CPU"), s.total("GPU")), (8.0, 0.0));
    let gib = 1024.0 * 1024.0 * 1024.0;
    assert!((s.total("memory") - 21.16 * gib).abs() < 1.0);
    assert!((s.total("object_store_memory") - 9.07 * gib).abs() < 1.0);
    assert!(s.complete(1, 1) && !s.complete(2, 1));
    assert!(s.notes.is_empty(), "{:?}", s.notes);
}

#[test]
fn ray_status_flattened_2node_2gpu() {
    let s = ray_status::parse(&fixture("ray/ray-status-2node-2gpu-flattened-from-vllm-issue-1401.txt"));
    assert_eq!((s.nodes, s.total("GPU"), s.total("CPU")), (2, 2.0, 16.0));
    let gib = 1024.0 * 1024.0 * 1024.0;
    assert!((s.total("memory") - 37.70 * gib).abs() < 1.0);
    assert!((s.total("object_store_memory") - 17.31 * gib).abs() < 1.0);
}

#[test]
fn ray_status_pending_demands_two_nodes_one_gpu() {
    let s = ray_status::parse(&fixture("vllm_multinode/vllm-v1-enginecore-waiting-placement-group-plus-ray-status-pending-demands.txt"));
    assert_eq!((s.nodes, s.total("GPU"), s.total("TPU"), s.total("CPU")), (2, 1.0, 1.0, 34.0));
    assert!(!s.complete(2, 1));
}

#[test]
fn ray_status_memory_and_object_store_with_a_separate_unit_stay_apart() {
    // Synthetic, in the older `used/total UNIT name` spelling (unit as its own word).
    let s = ray_status::parse("Healthy:\n 1 node_a\nResources\n---\nUsage:\n 0.0/8.0 CPU\n 0.00/44.873 GiB memory\n 0.00/22.436 GiB object_store_memory\nDemands:\n (no resource demands)\n");
    let gib = 1024.0 * 1024.0 * 1024.0;
    assert!((s.total("memory") - 44.873 * gib).abs() < 1.0, "{s:?}");
    assert!((s.total("object_store_memory") - 22.436 * gib).abs() < 1.0, "{s:?}");
    assert!(!s.totals.contains_key("GiB"), "{s:?}");
}

#[test]
fn ray_status_absurd_node_counts_saturate_instead_of_wrapping() {
    let s = ray_status::parse("Active:\n 4294967295 node_a\n 1 node_b\n 99999999999999999999999 node_c\nResources\nTotal Usage:\n 0.0/1.0 GPU\n");
    assert_eq!(s.nodes, u32::MAX);
    assert!(s.notes.iter().any(|n| n.contains("absurd")), "{:?}", s.notes);
    let wrap = ray_status::parse("Active:\n 4294967295 node_a\n 1 node_b\nResources\n");
    assert_eq!(wrap.nodes, u32::MAX, "4294967295 + 1 must not wrap to 0");
}

#[test]
fn ray_status_without_resources_is_reported() {
    let s = ray_status::parse("======== Autoscaler status ========\nNode status\nActive:\n 1 node_a\n");
    assert_eq!(s.nodes, 1);
    assert!(s.notes.iter().any(|n| n.contains("truncated")));
}

// ---- never panic ----

#[test]
fn no_parser_panics_on_any_prefix_or_byte_mutation_of_the_fixtures() {
    let dirs = ["ethtool", "ibdev2netdev", "ibv_devinfo", "perftest", "ray", "sysfs_infiniband", "nccl_tests"];
    for dir in dirs {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures").join(dir);
        for entry in std::fs::read_dir(&base).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let mut cuts: Vec<usize> = (0..text.len()).step_by(7).filter(|i| text.is_char_boundary(*i)).collect();
            cuts.push(text.len());
            for cut in cuts {
                let t = &text[..cut];
                let _ = (ethtool::parse(t), ibdev2netdev::parse(t), ibv_devinfo::parse(t), perftest::parse(t), ray_status::parse(t));
            }
            let mutated: String = text
                .chars()
                .map(|c| {
                    if c == ' ' {
                        ':'
                    } else if c == '\t' {
                        '/'
                    } else {
                        c
                    }
                })
                .collect();
            let _ =
                (ethtool::parse(&mutated), ibdev2netdev::parse(&mutated), ibv_devinfo::parse(&mutated), perftest::parse(&mutated), ray_status::parse(&mutated));
        }
    }
}

// ---- ping ----

#[test]
fn ping_counts_and_the_local_mtu_refusal() {
    // iputils output shapes (as printed by `ping -M do -s 8972 -c 3`), seen on this machine.
    let ok = ping::parse("PING 10.0.0.2 (10.0.0.2) from 10.0.0.1 rail0: 8972(9000) bytes of data.\n8980 bytes from 10.0.0.2: icmp_seq=1 ttl=64 time=0.05 ms\n\n--- 10.0.0.2 ping statistics ---\n3 packets transmitted, 3 received, 0% packet loss, time 402ms\n");
    assert_eq!((ok.transmitted, ok.received, ok.ok()), (Some(3), Some(3), true));
    let small = ping::parse("PING 10.0.0.2 (10.0.0.2) from 10.0.0.1 rail0: 8972(9000) bytes of data.\nping: local error: message too long, mtu=1500\nping: local error: message too long, mtu=1500\n\n--- 10.0.0.2 ping statistics ---\n3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 410ms\n");
    assert_eq!((small.transmitted, small.received, small.local_mtu, small.ok()), (Some(3), Some(0), Some(1500), false));
}

#[test]
fn ray_start_and_failure_logs_are_not_a_status_and_say_so() {
    for f in [
        "ray/ray-start-head-SUCCESS-tty-format.txt",
        "ray/ray-start-head-SUCCESS-non-tty-docker-compose-log-format.txt",
        "ray/ray-worker-FAIL-gcs-rpc-client-timeout.txt",
        "ray/ray-start-address-FAIL-unable-to-connect-gcs-ray1x.txt",
        "ray/ray-client-FAIL-failed-to-connect-gcs-docker-timestamps.txt",
        "ray/ray-start-address-FAIL-grpc-unavailable-ray1.9.txt",
    ] {
        let s = ray_status::parse(&fixture(f));
        assert_eq!((s.nodes, s.totals.len()), (0, 0), "{f}: {s:?}");
        assert!(s.notes.iter().any(|n| n.contains("no `Resources` section")), "{f}: {:?}", s.notes);
    }
}
