# plugins/sdk/sdk.cmake, included from the top CMakeLists.txt.
# `cmake --install` installs the plugin SDK: the one header,
# gatehouseConfig.cmake (+ version file, target gatehouse::plugin_sdk) and
# gatehouse-plugin.pc. Its package version is the plugin ABI version, read
# from the header. The plugins themselves install from their own
# CMakeLists.txt into ${CMAKE_INSTALL_LIBDIR}/gatehouse/plugins.
include(CMakePackageConfigHelpers)
file(STRINGS ${PROJECT_SOURCE_DIR}/plugins/include/gatehouse/plugin.h GH_ABI_LINES
     REGEX "^#define GH_PLUGIN_ABI_(MAJOR|MINOR) +[0-9]+")
string(REGEX REPLACE ".*GH_PLUGIN_ABI_MAJOR +([0-9]+).*" "\\1" GH_ABI_MAJOR "${GH_ABI_LINES}")
string(REGEX REPLACE ".*GH_PLUGIN_ABI_MINOR +([0-9]+).*" "\\1" GH_ABI_MINOR "${GH_ABI_LINES}")
# a version bump in the header configures again (the package version)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${PROJECT_SOURCE_DIR}/plugins/include/gatehouse/plugin.h)
set(GH_PLUGIN_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/gatehouse/plugins)
set(GH_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/gatehouse)
set(GH_SDK_BUILD_DIR ${PROJECT_BINARY_DIR}/sdk)

install(FILES ${PROJECT_SOURCE_DIR}/plugins/include/gatehouse/plugin.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/gatehouse)
set_target_properties(gh_plugin_sdk PROPERTIES EXPORT_NAME plugin_sdk)
install(TARGETS gh_plugin_sdk EXPORT gatehouseTargets)
install(EXPORT gatehouseTargets NAMESPACE gatehouse:: DESTINATION ${GH_CMAKE_INSTALL_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/gatehouseConfig.cmake.in
    ${GH_SDK_BUILD_DIR}/gatehouseConfig.cmake
    INSTALL_DESTINATION ${GH_CMAKE_INSTALL_DIR}
    PATH_VARS CMAKE_INSTALL_INCLUDEDIR GH_PLUGIN_INSTALL_DIR)
write_basic_package_version_file(${GH_SDK_BUILD_DIR}/gatehouseConfigVersion.cmake
    VERSION ${GH_ABI_MAJOR}.${GH_ABI_MINOR} COMPATIBILITY SameMajorVersion)
install(FILES ${GH_SDK_BUILD_DIR}/gatehouseConfig.cmake
              ${GH_SDK_BUILD_DIR}/gatehouseConfigVersion.cmake
        DESTINATION ${GH_CMAKE_INSTALL_DIR})
# the .pc finds its prefix from its own folder, so an install is relocatable
file(RELATIVE_PATH GH_PC_PREFIX_REL /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${CMAKE_CURRENT_LIST_DIR}/gatehouse-plugin.pc.in ${GH_SDK_BUILD_DIR}/gatehouse-plugin.pc @ONLY)
install(FILES ${GH_SDK_BUILD_DIR}/gatehouse-plugin.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
