//! The few libseccomp calls we use (seccomp.h, libseccomp 2.5). The library
//! is linked statically (see build.rs): no loader work at start-up.

use std::os::raw::{c_int, c_uint, c_void};

pub(crate) type Ctx = *mut c_void;

pub(crate) const ATTR_CTL_NNP: c_int = 3;
pub(crate) const ATTR_CTL_OPTIMIZE: c_int = 8;
pub(crate) const NR_SCMP_ERROR: c_int = -1;

/// struct scmp_arg_cmp.
#[repr(C)]
pub(crate) struct ArgCmp {
    pub arg: c_uint,
    pub op: c_uint,
    pub datum_a: u64,
    pub datum_b: u64,
}

extern "C" {
    pub(crate) fn seccomp_init(def_action: u32) -> Ctx;
    pub(crate) fn seccomp_release(ctx: Ctx);
    pub(crate) fn seccomp_arch_add(ctx: Ctx, arch_token: u32) -> c_int;
    pub(crate) fn seccomp_attr_set(ctx: Ctx, attr: c_int, value: u32) -> c_int;
    pub(crate) fn seccomp_syscall_resolve_name(name: *const std::os::raw::c_char) -> c_int;
    pub(crate) fn seccomp_rule_add_array(
        ctx: Ctx,
        action: u32,
        syscall: c_int,
        arg_cnt: c_uint,
        arg_array: *const ArgCmp,
    ) -> c_int;
    pub(crate) fn seccomp_export_bpf(ctx: Ctx, fd: c_int) -> c_int;
}
