/** Version of this package, reported as the instrumentation scope version and telemetry.distro.version. */
export const VERSION = "0.1.0";
