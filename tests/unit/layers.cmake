# layers.cmake: checks the layering of core/ (core/README.md), run by ctest
# as `layers`:  cmake -DGH_CORE=<source>/core -P layers.cmake
#
# Each folder may include its own headers and those of the folders below it,
# and only the outside headers its layer may use. The libraries' link lines
# already refuse an upward call; this catches an upward #include (a struct
# layout or an inline of an upper layer) and an outside header in the wrong
# layer, and names the file and line.
cmake_minimum_required(VERSION 3.25)

set(layers base codec config http upstream ws cluster daemon)
# outside headers a layer may include (regexes); anything not listed here is
# the C library's and free for all
set(ext_event2   "^event2/"          http upstream ws cluster daemon)
set(ext_ssl      "^openssl/(ssl|err|x509)" http upstream ws cluster daemon)
set(ext_crypto   "^openssl/"         codec config http upstream ws cluster daemon)
set(ext_yaml     "^yaml\\.h$"        config)
set(ext_hiredis  "^hiredis/"         cluster)
set(ext_dl       "^dlfcn\\.h$"       ws)
set(ext_sdk      "^gatehouse/"       ws cluster daemon)
set(externals ext_event2 ext_ssl ext_crypto ext_yaml ext_hiredis ext_dl ext_sdk)

# which folder owns each of our headers
foreach(layer ${layers})
    file(GLOB hs RELATIVE ${GH_CORE}/${layer} ${GH_CORE}/${layer}/*.h)
    foreach(h ${hs})
        if(DEFINED owner_${h})
            message(SEND_ERROR "${h} is in both core/${owner_${h}} and core/${layer}")
        endif()
        set(owner_${h} ${layer})
    endforeach()
endforeach()

set(bad 0)
set(below "")
foreach(layer ${layers})
    list(APPEND below ${layer})
    file(GLOB srcs ${GH_CORE}/${layer}/*.c ${GH_CORE}/${layer}/*.h)
    foreach(src ${srcs})
        file(STRINGS ${src} lines REGEX "^[ \t]*#[ \t]*include")
        file(RELATIVE_PATH rel ${GH_CORE}/.. ${src})
        foreach(line ${lines})
            if(line MATCHES "#[ \t]*include[ \t]*\"([^\"]+)\"")
                set(h ${CMAKE_MATCH_1})
                if(NOT DEFINED owner_${h})
                    message(SEND_ERROR "${rel}: includes \"${h}\", which is in no folder of core/")
                    math(EXPR bad "${bad} + 1")
                elseif(NOT owner_${h} IN_LIST below)
                    message(SEND_ERROR "${rel}: includes \"${h}\" of core/${owner_${h}}, a layer above core/${layer}")
                    math(EXPR bad "${bad} + 1")
                endif()
            elseif(line MATCHES "#[ \t]*include[ \t]*<([^>]+)>")
                set(h ${CMAKE_MATCH_1})
                foreach(ext ${externals})
                    list(GET ${ext} 0 re)
                    set(allowed ${${ext}})
                    list(REMOVE_AT allowed 0)
                    if(h MATCHES "${re}")
                        if(NOT layer IN_LIST allowed)
                            message(SEND_ERROR "${rel}: includes <${h}>, which core/${layer} may not use")
                            math(EXPR bad "${bad} + 1")
                        endif()
                        break()
                    endif()
                endforeach()
            endif()
        endforeach()
    endforeach()
endforeach()

file(GLOB stray ${GH_CORE}/*.c ${GH_CORE}/*.h)
if(stray)
    message(SEND_ERROR "files at the top of core/, outside any layer: ${stray}")
    math(EXPR bad "${bad} + 1")
endif()
if(bad GREATER 0)
    message(FATAL_ERROR "layers: ${bad} include(s) break the layering of core/")
endif()
message(STATUS "layers: every include of core/ respects the layering")
