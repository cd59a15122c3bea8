// Types of driver-patch.mjs (an install-time script, kept as plain JavaScript so npm can run it before anything is built).
export declare const patchMarker: string
export declare const typesMarker: string
export declare function driverFiles(): string[]
export declare function patchDriver(): string[]
