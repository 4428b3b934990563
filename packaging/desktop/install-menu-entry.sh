#!/bin/sh
# Adds SpheroSeg Workbench to this user's application menu (Linux desktops that follow freedesktop.org):
# run it from the unpacked bundle's folder, or give that folder as the first argument. Moving the folder
# later means running this again.
set -eu
bundle=$(cd "${1:-$(dirname "$0")}" && pwd)
[ -x "$bundle/SpheroSeg" ] || { echo "no SpheroSeg program in $bundle: give the bundle's folder" >&2; exit 1; }
data=${XDG_DATA_HOME:-$HOME/.local/share}
mkdir -p "$data/applications" "$data/icons/hicolor/512x512/apps"
cp "$bundle/spheroseg-workbench.png" "$data/icons/hicolor/512x512/apps/spheroseg-workbench.png"
sed -e "s|^Exec=SpheroSeg|Exec=\"$bundle/SpheroSeg\"|" -e "s|^TryExec=SpheroSeg|TryExec=$bundle/SpheroSeg|" \
    "$bundle/spheroseg-workbench.desktop" > "$data/applications/spheroseg-workbench.desktop"
echo "SpheroSeg Workbench is in the application menu ($data/applications/spheroseg-workbench.desktop)"
