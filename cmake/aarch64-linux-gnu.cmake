# Cross-compiling the kernel self-test for AArch64 (Debian's g++-aarch64-linux-gnu), run under
# qemu-aarch64 by scripts/native-selftest.sh.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_EXE_LINKER_FLAGS_INIT -static-libstdc++)
