// Scaffold: the backend definition is written in this package (see the plugin's hooks/backends.ts).
export {}
