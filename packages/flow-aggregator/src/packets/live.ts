import type { PacketCapture } from "@kalman/ebpf-receiver";

const TWO_32 = 4294967296;

/**
 * Names the observation points of a live capture for the flow table: a PacketCursor's interfaceId
 * is (capture handle, ifindex); this resolves the interface name in the handle's namespace and the
 * namespace's inode (what socket events carry as netns).
 */
export function captureObservations(
  capture: PacketCapture,
): (interfaceId: number) => { interface: string; netns: string } {
  return (interfaceId) => {
    const captureId = Math.floor(interfaceId / TWO_32);
    const ifindex = interfaceId % TWO_32;
    const ns = capture.netnsOf(captureId);
    return { interface: capture.interfaceName(captureId, ifindex), netns: ns ? String(ns.inode) : "" };
  };
}
