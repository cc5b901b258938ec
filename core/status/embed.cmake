# embed.cmake: writes OUT, a C source holding the status page's files as
# byte arrays (gh_status_assets, status.h), so the page the daemon serves is
# always the one built with it:
#   cmake -DSRC=<dir> -DNAMES=a.html,b.css -DOUT=<file.c> -P embed.cmake
# Run by the build whenever a file changes (core/status/CMakeLists.txt).
cmake_minimum_required(VERSION 3.25)

string(REPLACE "," ";" names "${NAMES}")
set(arrays "")
set(table "")
set(i 0)
foreach(name ${names})
    file(READ "${SRC}/${name}" hex HEX)
    file(SIZE "${SRC}/${name}" size)
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
    # 16 bytes a line
    string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n    " bytes "${bytes}")
    string(APPEND arrays "static const unsigned char asset${i}[] = {\n    ${bytes}0x00\n};\n")
    string(APPEND table "    { .name = \"${name}\", .data = asset${i}, .len = ${size} },\n")
    math(EXPR i "${i} + 1")
endforeach()
set(text "/* Made by core/status/embed.cmake from www/status/: do not edit. */\n")
string(APPEND text "#include \"status.h\"\n\n${arrays}\n")
string(APPEND text "const gh_status_asset gh_status_assets[] = {\n${table}    { .name = NULL },\n};\n")
# rewrite only on change, so that nothing downstream rebuilds for nothing
if(EXISTS "${OUT}")
    file(READ "${OUT}" old)
    if(old STREQUAL text)
        return()
    endif()
endif()
file(WRITE "${OUT}" "${text}")
