// Placeholder replaced once the integration tier lands (shared Temporal dev server per run).
export default function setup(): void {}
