/** The version every Vigil program reports (`--version`) and the agent sends in its hello; package.json's. */
export const VIGIL_VERSION = '0.1.0';
