// Types of scripts/build.mjs for the TypeScript that imports it (the test suite's global setup).
export declare const ROOT: string;
export declare const DIST: string;
/** Why a build is needed, or undefined when dist/ is fresh. */
export declare function staleReason(): string | undefined;
export declare function hasSources(): boolean;
export declare function findTsc(): string | undefined;
/** Builds dist/ unless fresh; false when tsc reported errors. */
export declare function build(opts?: { log?: (message: string) => void }): boolean;
/** Builds when stale, printing one line; throws when it cannot. */
export declare function ensureFreshBuild(): void;
